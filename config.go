package errmon

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/mail"
	"net/url"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/errmon/errmon/internal/store"
	"github.com/gin-gonic/gin"
	"gorm.io/gorm"
)

// Environment keys read by [ConfigFromEnv]. Each one sets the [Config] field
// named in its comment.
const (
	envSendNotification = "APP_ERROR_SEND_NOTIFICATION" // Config.SendNotification
	envRecipientEmail   = "APP_ERROR_RECIPIENT_EMAIL"   // Config.RecipientEmail, comma-separated
	envSubjectPrefix    = "APP_ERROR_SUBJECT_PREFIX"    // Config.SubjectPrefix
	envMaskWith         = "APP_ERROR_MASK_WITH"         // Config.MaskWith
	envMaskedKeyHas     = "APP_ERROR_MASKED_KEY_HAS"    // Config.MaskedKeyHas, comma-separated; replaces the default list
	envURLPrefix        = "APP_ERROR_URL_PREFIX"        // Config.URLPrefix
	envEmailSender      = "APP_ERROR_EMAIL_SENDER"      // Config.EmailSender
	envListSize         = "APP_DEFAULT_LIST_SIZE"       // Config.ListSize
	envBaseURL          = "APP_ERROR_BASE_URL"          // Config.BaseURL
	envRecordStatus     = "APP_ERROR_RECORD_STATUS"     // Config.RecordStatus
	envFlushInterval    = "APP_ERROR_FLUSH_INTERVAL"    // Config.FlushInterval, a time.Duration string such as "1s"
	envMaxPending       = "APP_ERROR_MAX_PENDING"       // Config.MaxPending
	envMaxBodyBytes     = "APP_ERROR_MAX_BODY_BYTES"    // Config.MaxBodyBytes
	envNotifyEvery      = "APP_ERROR_NOTIFY_EVERY"      // Config.NotifyEvery, a time.Duration string; "0" turns it off
	envNotifyThresholds = "APP_ERROR_NOTIFY_THRESHOLDS" // Config.NotifyThresholds, comma-separated counts such as "10,100,1000"
	envRetentionDays    = "APP_ERROR_RETENTION_DAYS"    // Config.RetentionDays
	envMaxErrors        = "APP_ERROR_MAX_ERRORS"        // Config.MaxErrors
	envRelease          = "APP_ERROR_RELEASE"           // Config.Release
	envEnvironment      = "APP_ERROR_ENVIRONMENT"       // Config.Environment
)

// Defaults used by [DefaultConfig] and filled in by [New] for zero fields.
const (
	defaultMaskWith        = "**************"
	defaultURLPrefix       = "/dev/error"
	defaultRecordStatus    = http500
	defaultFlushInterval   = time.Second
	defaultMaxPending      = 10000
	defaultMaxBodyBytes    = 64 << 10
	defaultCloseTimeout    = 5 * time.Second
	defaultNotifyTimeout   = 30 * time.Second
	defaultRetentionDays   = 90
	defaultMaxErrors       = 1000000
	defaultDigestThreshold = 10
	defaultDigestWindow    = time.Minute
	http500                = 500
)

// defaultMaskedKeyHas is the default of [Config.MaskedKeyHas]. It is
// unexported so that nothing outside the package can change what errmon
// masks by default: [DefaultConfig] returns a fresh copy of it.
var defaultMaskedKeyHas = []string{"password", "secret"}

// Config configures a [Monitor]. Start from [DefaultConfig] or
// [ConfigFromEnv], set DB, and pass it to [New].
//
// The settings in the first group can also be read from the environment:
// each field's comment names its key. The zero value of a setting means
// "use the default", except where the comment says otherwise.
type Config struct {
	// SendNotification turns on alerts through Notifier for new errors and
	// regressions. Key APP_ERROR_SEND_NOTIFICATION, default false. When true,
	// Notifier is required, and so are RecipientEmail and EmailSender when
	// the Notifier sends email (it has a method SendsEmail() bool that
	// returns true, as the [github.com/errmon/errmon/mail] Notifier does); a
	// webhook or chat Notifier needs neither.
	SendNotification bool
	// RecipientEmail lists who receives alerts. Key APP_ERROR_RECIPIENT_EMAIL,
	// comma-separated in the environment.
	RecipientEmail []string
	// SubjectPrefix is put in brackets at the start of each alert's subject.
	// Key APP_ERROR_SUBJECT_PREFIX.
	SubjectPrefix string
	// MaskWith replaces every masked value. Key APP_ERROR_MASK_WITH, default
	// "**************".
	MaskWith string
	// DisableBuiltinMasking turns off errmon's built-in masking: the list of
	// sensitive key fragments (token, api_key, auth, session, jwt, cvv...)
	// that is masked in addition to MaskedKeyHas, and the scrubbing of
	// secret-shaped values (card numbers, JWTs, Bearer credentials) wherever
	// they stand. Only MaskedKeyHas, URL passwords and the credential headers
	// are then masked. Default false; there is no environment key, so that
	// turning it off is a decision in code.
	DisableBuiltinMasking bool
	// MaskedKeyHas lists the substrings that make a key secret: a header,
	// cookie, query parameter, form field, path parameter or JSON key (at
	// any depth) whose name contains one of them, compared ignoring ASCII
	// case and the separators '-', '_' and '.', is stored as MaskWith. Key
	// APP_ERROR_MASKED_KEY_HAS (comma-separated; it replaces the default
	// list), default "password","secret". Authorization, Proxy-Authorization,
	// Cookie and other credential headers are always masked in addition,
	// and so is a built-in list of fragments (token, api_key, auth, session,
	// jwt, cvv...; see DisableBuiltinMasking and the README).
	MaskedKeyHas []string
	// URLPrefix is where RegisterRoutes mounts the dashboard. Key
	// APP_ERROR_URL_PREFIX, default "/dev/error". It must start with "/".
	URLPrefix string
	// EmailSender is the From address of alerts. Key APP_ERROR_EMAIL_SENDER.
	EmailSender string
	// ListSize is the page size of the dashboard and its JSON API, from 1 to
	// 1000. Key APP_DEFAULT_LIST_SIZE, default 20.
	ListSize int
	// BaseURL is the external address of the service (scheme and host, and
	// any path the service is mounted under), used for links in alerts. Key
	// APP_ERROR_BASE_URL.
	BaseURL string

	// RecordStatus is the lowest final response status at which the errors a
	// handler attached with c.Error are recorded. Key APP_ERROR_RECORD_STATUS,
	// default 500; set 400 to record client errors too. Panics and Record are
	// recorded whatever the status.
	RecordStatus int
	// FlushInterval is how often recorded occurrences are written to the
	// database: occurrences of one error within an interval become one
	// upsert. Key APP_ERROR_FLUSH_INTERVAL, default 1s.
	FlushInterval time.Duration
	// MaxPending bounds the number of distinct errors held in memory while
	// waiting to be stored (for instance while the database is down). Further
	// distinct errors are dropped and counted (see [Monitor.Stats]); further
	// occurrences of pending errors are still counted exactly. Key
	// APP_ERROR_MAX_PENDING, default 10000.
	MaxPending int
	// MaxBodyBytes caps how much of a request body is kept for the error's
	// context. The handler always sees the whole body. Key
	// APP_ERROR_MAX_BODY_BYTES, default 64 KiB; a negative value keeps none.
	MaxBodyBytes int64
	// NotifyEvery, when positive, re-sends an alert for an error that is
	// still open and still occurring, at most once per interval. Key
	// APP_ERROR_NOTIFY_EVERY, default 0 (off).
	NotifyEvery time.Duration
	// NotifyThresholds re-sends an alert when an open error's count reaches
	// each of these values. Key APP_ERROR_NOTIFY_THRESHOLDS, default none.
	NotifyThresholds []int64
	// NotifyTimeout bounds one delivery attempt of an alert or ticket. A
	// failed delivery is tried up to 4 times, with a backoff doubling from
	// min(500ms, NotifyTimeout); errors wrapping [ErrPermanent] and panics
	// are not retried.
	// Default 30s.
	NotifyTimeout time.Duration
	// CloseTimeout bounds how long Close waits for pending work. Default 5s.
	CloseTimeout time.Duration
	// RetentionDays deletes, with their samples and hourly counts, the
	// resolved errors not seen for this many days. Key
	// APP_ERROR_RETENTION_DAYS, default 90; a negative value keeps them
	// forever. Retention runs when the monitor starts and then hourly.
	RetentionDays int
	// MaxErrors bounds the errors stored: beyond it, the oldest resolved
	// errors are deleted first, then the least recently seen. Key
	// APP_ERROR_MAX_ERRORS, default 1000000; a negative value sets no bound.
	MaxErrors int
	// DigestThreshold is how many new errors are announced one by one
	// within one DigestWindow: when more need an alert, the first
	// DigestThreshold go out as usual and the rest are collected and sent
	// as one digest (Reason "digest") when the window ends, or at Flush.
	// Regressions, thresholds and repeats are never digested. Default 10; a
	// negative value turns the digest off (every new error is announced on
	// its own).
	DigestThreshold int
	// DigestWindow is the period over which DigestThreshold counts new
	// errors in one process. Default 1 minute.
	DigestWindow time.Duration

	// IgnoreErrors lists errors that are never recorded: an error that
	// errors.Is one of them (c.Errors' Err, a panic value, Record's err, a
	// goroutine's panic) is counted in Stats.Ignored and not stored. A
	// panic is still logged and answered. Default none.
	IgnoreErrors []error
	// IgnoreStatus lists final response statuses (100 to 599) at which
	// the errors attached with c.Error, which RecordStatus would record,
	// are counted in Stats.Ignored instead. Panics and Record are not
	// affected. Default none.
	IgnoreStatus []int
	// Ignore, when set, receives each occurrence of a panic, c.Error,
	// Record or goroutine once it is built, before it is queued; returning
	// true drops it, counted in Stats.Ignored. It runs where the failure
	// is captured (for a request, on its path). A panic in it counts as
	// false and is logged once per monitor.
	Ignore func(*Occurrence) bool
	// RecordClientGone records the errors that errors.Is context.Canceled
	// or context.DeadlineExceeded while the request's own context is done
	// (the client left, or its deadline passed). Default false: they are
	// counted in Stats.ClientGone and not stored.
	RecordClientGone bool

	// DB is the application's database; errmon creates its tables in it.
	// Required. errmon imports no driver: SQLite, PostgreSQL and MySQL
	// (MariaDB 10.5 or later) are supported; a MySQL DSN needs
	// parseTime=true.
	DB *gorm.DB
	// Notifier delivers alerts, for instance a [github.com/errmon/errmon/mail]
	// Notifier. Optional unless SendNotification is true.
	Notifier Notifier
	// Ticketing, when set, raises a ticket for each new error and regression,
	// whether or not SendNotification is set.
	Ticketing Ticketing
	// ContextBuilder builds the request context stored with each error.
	// Default [DefaultContextBuilder]{}. Whatever it returns is masked again
	// before it is stored.
	ContextBuilder ContextBuilder
	// ViewPermission decides who may see or change anything under URLPrefix;
	// a refused request gets 401 with a text that says how to open it.
	// Leaving it nil keeps the default, which depends on gin's mode, read on
	// every request (so gin.SetMode after New counts): in debug and test
	// mode the default is [LocalOnly] (a loopback peer, a loopback Host and
	// no proxy headers); in release mode it refuses everyone, since nothing
	// in a request tells a local developer from a proxy on the same machine.
	// Set it to decide; setting errmon.LocalOnly explicitly opens the
	// dashboard to local requests again in release mode. [Monitor.Config]
	// reports nil while the default is in use.
	ViewPermission func(*gin.Context) bool
	// Actor names who performs a dashboard action (resolve, mute, snooze,
	// a note...) for the error's history, from the request (the user of
	// your authentication, say). Default (nil, or a function returning ""):
	// "dashboard". The name is masked like any captured text and cut to 64
	// bytes, on one line.
	Actor func(*gin.Context) string
	// User names the user a failing request hit, for the count of users
	// affected (see [SetUser], which takes precedence for the request it is
	// called on). It runs only when a request fails, after the handlers;
	// "" means no user. Default (nil): only SetUser names users.
	User func(*gin.Context) string
	// Output receives the panic log, in the format of gin's Recovery.
	// Default (nil): gin.DefaultErrorWriter, as gin.Recovery writes;
	// io.Discard silences it.
	Output io.Writer
	// RecoveryHandler writes the response after a panic. Default:
	// c.AbortWithStatus(500).
	RecoveryHandler gin.RecoveryFunc
	// Fingerprint, when set, replaces the default grouping: it receives the
	// occurrence and returns the key that identifies its bug; errmon hashes
	// it. Returning "" keeps the default fingerprint.
	Fingerprint func(*Occurrence) string
	// Logger receives errmon's own failures (what could not be stored or
	// sent). Default slog.Default().
	Logger *slog.Logger
	// Release names the version of the service that recorded an
	// occurrence. Key APP_ERROR_RELEASE. Default: the main module's version
	// from the build info, else its vcs.revision shortened to 12 digits,
	// with "-dirty" when the build had local changes, else "".
	Release string
	// Environment names where the service runs ("production", "staging").
	// Key APP_ERROR_ENVIRONMENT, default "".
	Environment string
	// SourceURL, when set, turns the application's frames on the dashboard
	// and in alerts into links to their code: a template such as
	// "https://github.com/acme/api/blob/{release}/{path}#L{line}", where
	// {release} is Release, {path} the frame's file relative to the main
	// module's root directory and {line} its line, each escaped for a URL.
	// It must be an http or https URL whose placeholders come after the
	// host, and must name {path}. Frames outside the main module, and every
	// frame when the template names {release} and Release is "", are not
	// linked. Default "" (no links); there is no environment key.
	SourceURL string
}

// DefaultConfig returns a Config with every default set, as [New] fills
// them for zero fields (the one place they are defined is New's); Logger
// is left nil, which New reads as slog.Default() when it runs. DB is left
// nil: set it before calling New. Each call returns slices of its own:
// DefaultConfig().MaskedKeyHas is a fresh copy of the default list
// ("password", "secret"), which the caller may change freely.
func DefaultConfig() Config {
	cfg := Config{}.withDefaults()
	cfg.Logger = nil
	return cfg
}

// ConfigFromEnv returns [DefaultConfig] overlaid with the APP_ERROR_*
// environment variables that are set. A value that cannot be parsed is an
// error naming its key; the parts (DB, Notifier...) are left for the caller.
func ConfigFromEnv() (Config, error) {
	return configFromLookup(os.LookupEnv)
}

func configFromLookup(lookup func(string) (string, bool)) (Config, error) {
	cfg := DefaultConfig()
	var errs []error
	str := func(key string, dst *string) {
		if v, ok := lookup(key); ok {
			*dst = strings.TrimSpace(v)
		}
	}
	list := func(key string, dst *[]string) {
		if v, ok := lookup(key); ok {
			*dst = splitList(v)
		}
	}
	integer := func(key string, set func(int64)) {
		if v, ok := lookup(key); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				errs = append(errs, &ConfigError{Key: key, Reason: fmt.Sprintf("%q is not an integer", v)})
				return
			}
			set(n)
		}
	}
	duration := func(key string, dst *time.Duration) {
		if v, ok := lookup(key); ok {
			d, err := time.ParseDuration(strings.TrimSpace(v))
			if err != nil {
				errs = append(errs, &ConfigError{Key: key, Reason: fmt.Sprintf("%q is not a duration such as \"1s\"", v)})
				return
			}
			*dst = d
		}
	}
	if v, ok := lookup(envSendNotification); ok {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			errs = append(errs, &ConfigError{Key: envSendNotification, Reason: fmt.Sprintf("%q is not a boolean (true or false)", v)})
		}
		cfg.SendNotification = b
	}
	list(envRecipientEmail, &cfg.RecipientEmail)
	str(envSubjectPrefix, &cfg.SubjectPrefix)
	if v, ok := lookup(envMaskWith); ok {
		cfg.MaskWith = v // spaces may be intended
	}
	list(envMaskedKeyHas, &cfg.MaskedKeyHas)
	str(envURLPrefix, &cfg.URLPrefix)
	str(envEmailSender, &cfg.EmailSender)
	str(envRelease, &cfg.Release)
	str(envEnvironment, &cfg.Environment)
	integer(envListSize, func(n int64) { cfg.ListSize = int(n) })
	str(envBaseURL, &cfg.BaseURL)
	integer(envRecordStatus, func(n int64) { cfg.RecordStatus = int(n) })
	duration(envFlushInterval, &cfg.FlushInterval)
	integer(envMaxPending, func(n int64) { cfg.MaxPending = int(n) })
	integer(envMaxBodyBytes, func(n int64) { cfg.MaxBodyBytes = n })
	integer(envRetentionDays, func(n int64) { cfg.RetentionDays = int(n) })
	integer(envMaxErrors, func(n int64) { cfg.MaxErrors = int(n) })
	duration(envNotifyEvery, &cfg.NotifyEvery)
	if v, ok := lookup(envNotifyThresholds); ok {
		cfg.NotifyThresholds = nil
		for _, s := range splitList(v) {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n <= 0 {
				errs = append(errs, &ConfigError{Key: envNotifyThresholds, Reason: fmt.Sprintf("%q is not a positive integer", s)})
				continue
			}
			cfg.NotifyThresholds = append(cfg.NotifyThresholds, n)
		}
	}
	return cfg, errors.Join(errs...)
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// sendsEmail reports whether n delivers alerts by email, to
// Notification.From and To: it says so with a method SendsEmail() bool, as
// the [github.com/errmon/errmon/mail] Notifier does.
func sendsEmail(n Notifier) bool {
	e, ok := n.(interface{ SendsEmail() bool })
	return ok && e.SendsEmail()
}

// ConfigError reports an invalid [Config]. Key is the APP_ERROR_* key at
// fault, or the Config field ("Config.DB") where no key exists.
type ConfigError struct {
	Key    string
	Reason string
}

// Error implements error.
func (e *ConfigError) Error() string { return "errmon: invalid config: " + e.Key + ": " + e.Reason }

// clone returns a copy of cfg that shares no slice or map with it, so that
// neither the caller of [New] nor the reader of [Monitor.Config] can change
// a running monitor's settings through one. Keep it in step with Config's
// fields: TestConfigCloneCoversEverySliceAndMap fails when a slice or map
// field is added without a copy here.
func (cfg Config) clone() Config {
	cfg.RecipientEmail = slices.Clone(cfg.RecipientEmail)
	cfg.MaskedKeyHas = slices.Clone(cfg.MaskedKeyHas)
	cfg.NotifyThresholds = slices.Clone(cfg.NotifyThresholds)
	cfg.IgnoreErrors = slices.Clone(cfg.IgnoreErrors)
	cfg.IgnoreStatus = slices.Clone(cfg.IgnoreStatus)
	return cfg
}

// withDefaults returns cfg with zero settings replaced by their defaults:
// the one place the defaults are defined.
func (cfg Config) withDefaults() Config {
	if cfg.MaskWith == "" {
		cfg.MaskWith = defaultMaskWith
	}
	if cfg.URLPrefix == "" {
		cfg.URLPrefix = defaultURLPrefix
	}
	if cfg.ListSize == 0 {
		cfg.ListSize = store.DefaultListSize
	}
	if cfg.RecordStatus == 0 {
		cfg.RecordStatus = defaultRecordStatus
	}
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = defaultFlushInterval
	}
	if cfg.MaxPending == 0 {
		cfg.MaxPending = defaultMaxPending
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = defaultMaxBodyBytes
	}
	if cfg.NotifyTimeout == 0 {
		cfg.NotifyTimeout = defaultNotifyTimeout
	}
	if cfg.CloseTimeout == 0 {
		cfg.CloseTimeout = defaultCloseTimeout
	}
	if cfg.RetentionDays == 0 {
		cfg.RetentionDays = defaultRetentionDays
	}
	if cfg.MaxErrors == 0 {
		cfg.MaxErrors = defaultMaxErrors
	}
	if cfg.DigestThreshold == 0 {
		cfg.DigestThreshold = defaultDigestThreshold
	}
	if cfg.DigestWindow == 0 {
		cfg.DigestWindow = defaultDigestWindow
	}
	if cfg.Release == "" {
		cfg.Release = buildRelease
	}
	if cfg.ContextBuilder == nil {
		cfg.ContextBuilder = DefaultContextBuilder{}
	}
	if cfg.RecoveryHandler == nil {
		cfg.RecoveryHandler = defaultRecoveryHandler
	}
	if cfg.Output == nil {
		cfg.Output = gin.DefaultErrorWriter
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	lower := make([]string, 0, len(cfg.MaskedKeyHas))
	for _, k := range cfg.MaskedKeyHas {
		if k = strings.ToLower(strings.TrimSpace(k)); k != "" {
			lower = append(lower, k)
		}
	}
	if len(lower) == 0 { // an empty (or blank) list would unmask everything
		lower = append(lower, defaultMaskedKeyHas...)
	}
	cfg.MaskedKeyHas = lower
	if len(cfg.URLPrefix) > 1 {
		cfg.URLPrefix = strings.TrimRight(cfg.URLPrefix, "/")
	}
	return cfg
}

// Validate reports every problem of cfg as [New] would, each a
// *[ConfigError] naming its APP_ERROR_* key (several are joined), after
// filling the defaults of zero fields; cfg itself is not changed. It needs
// no database: a nil DB is not reported (New requires one), a DB of an
// unsupported dialect is. Use it to check a configuration at startup or
// in a test before any connection is opened.
func (cfg Config) Validate() error {
	return cfg.clone().withDefaults().validate(false)
}

// validate reports every problem of a Config that has had its defaults
// filled, each naming its key; needDB says whether a nil DB is one.
func (cfg Config) validate(needDB bool) error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &ConfigError{Key: key, Reason: fmt.Sprintf(format, args...)})
	}
	if cfg.DB == nil {
		if needDB {
			bad("Config.DB", "a *gorm.DB is required")
		}
	} else if name := cfg.DB.Dialector.Name(); name != "sqlite" && name != "postgres" && name != "mysql" {
		bad("Config.DB", "dialect %q is not supported (use sqlite, postgres or mysql)", name)
	}
	if !strings.HasPrefix(cfg.URLPrefix, "/") {
		bad(envURLPrefix, "%q must start with \"/\"", cfg.URLPrefix)
	} else if cfg.URLPrefix == "/" {
		bad(envURLPrefix, "the dashboard cannot take the root \"/\" of the service")
	} else if strings.ContainsAny(cfg.URLPrefix, ":*?#") {
		bad(envURLPrefix, "%q must be a plain path (no ':', '*', '?' or '#')", cfg.URLPrefix)
	}
	if len(cfg.Release) > maxLabelBytes || !printable(cfg.Release) {
		bad(envRelease, "%q must be at most %d printable bytes", cfg.Release, maxLabelBytes)
	}
	if len(cfg.Environment) > maxLabelBytes || !printable(cfg.Environment) {
		bad(envEnvironment, "%q must be at most %d printable bytes", cfg.Environment, maxLabelBytes)
	}
	if cfg.SourceURL != "" {
		if why := sourceURLProblem(cfg.SourceURL); why != "" {
			bad("Config.SourceURL", "%q %s", cfg.SourceURL, why)
		}
	}
	if cfg.ListSize < 1 || cfg.ListSize > 1000 {
		bad(envListSize, "%d must be between 1 and 1000", cfg.ListSize)
	}
	if cfg.SendNotification {
		if cfg.Notifier == nil {
			bad("Config.Notifier", "required when %s is true", envSendNotification)
		} else if sendsEmail(cfg.Notifier) {
			if len(cfg.RecipientEmail) == 0 {
				bad(envRecipientEmail, "required when %s is true and the Notifier sends email", envSendNotification)
			}
			if cfg.EmailSender == "" {
				bad(envEmailSender, "required when %s is true and the Notifier sends email", envSendNotification)
			}
		}
	}
	for _, r := range cfg.RecipientEmail {
		if _, err := mail.ParseAddress(r); err != nil {
			bad(envRecipientEmail, "%q is not an email address", r)
		}
	}
	if cfg.EmailSender != "" {
		if _, err := mail.ParseAddress(cfg.EmailSender); err != nil {
			bad(envEmailSender, "%q is not an email address", cfg.EmailSender)
		}
	}
	if cfg.BaseURL != "" {
		u, err := url.Parse(cfg.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			bad(envBaseURL, "%q must be an absolute http(s) URL such as https://api.example.com", cfg.BaseURL)
		}
	}
	if strings.ContainsAny(cfg.SubjectPrefix, "\r\n") {
		bad(envSubjectPrefix, "must be one line")
	}
	if cfg.RecordStatus < 100 || cfg.RecordStatus > 599 {
		bad(envRecordStatus, "%d is not an HTTP status", cfg.RecordStatus)
	}
	if cfg.FlushInterval < 0 {
		bad(envFlushInterval, "%v must be positive", cfg.FlushInterval)
	}
	if cfg.MaxPending < 1 {
		bad(envMaxPending, "%d must be positive", cfg.MaxPending)
	}
	if cfg.NotifyEvery < 0 {
		bad(envNotifyEvery, "%v must not be negative", cfg.NotifyEvery)
	}
	for _, t := range cfg.NotifyThresholds {
		if t <= 0 {
			bad(envNotifyThresholds, "%d must be positive", t)
		}
	}
	if cfg.NotifyTimeout < 0 {
		bad("Config.NotifyTimeout", "%v must be positive", cfg.NotifyTimeout)
	}
	if cfg.CloseTimeout < 0 {
		bad("Config.CloseTimeout", "%v must be positive", cfg.CloseTimeout)
	}
	if cfg.DigestWindow < 0 {
		bad("Config.DigestWindow", "%v must be positive", cfg.DigestWindow)
	}
	for _, st := range cfg.IgnoreStatus {
		if st < 100 || st > 599 {
			bad("Config.IgnoreStatus", "%d is not an HTTP status", st)
		}
	}
	return errors.Join(errs...)
}

// buildRelease is the default Config.Release: the main module's version,
// else the VCS revision of the build (12 digits, "-dirty" when modified).
var buildRelease = func() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	return releaseOf(bi)
}()

// releaseOf is the release that build info names.
func releaseOf(bi *debug.BuildInfo) string {
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev string
	var dirty bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" && dirty {
		rev += "-dirty"
	}
	return rev
}

// maxLabelBytes caps Config.Release and Config.Environment.
const maxLabelBytes = 64

// printable reports whether s has only printable ASCII and no space.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
