package tests

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/errmon/errmon"
	"github.com/errmon/errmon/internal/store"
	"github.com/gin-gonic/gin"
)

// allEnvKeys is every key ConfigFromEnv reads.
var allEnvKeys = []string{
	"APP_ERROR_SEND_NOTIFICATION", "APP_ERROR_RECIPIENT_EMAIL", "APP_ERROR_SUBJECT_PREFIX",
	"APP_ERROR_MASK_WITH", "APP_ERROR_MASKED_KEY_HAS", "APP_ERROR_URL_PREFIX", "APP_ERROR_EMAIL_SENDER",
	"APP_DEFAULT_LIST_SIZE", "APP_ERROR_BASE_URL", "APP_ERROR_RECORD_STATUS", "APP_ERROR_FLUSH_INTERVAL",
	"APP_ERROR_MAX_PENDING", "APP_ERROR_MAX_BODY_BYTES", "APP_ERROR_NOTIFY_EVERY",
	"APP_ERROR_NOTIFY_THRESHOLDS", "APP_ERROR_RETENTION_DAYS", "APP_ERROR_MAX_ERRORS",
}

// clearConfigEnv unsets every key ConfigFromEnv reads for the test
// (restored after).
func clearConfigEnv(t *testing.T) {
	t.Helper()
	for _, k := range allEnvKeys {
		t.Setenv(k, "") // registers the restore
		os.Unsetenv(k)
	}
}

// configErrorKeys returns the Key of every *errmon.ConfigError joined in
// err.
func configErrorKeys(err error) []string {
	var keys []string
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		var ce *errmon.ConfigError
		if errors.As(e, &ce) && e == error(ce) {
			keys = append(keys, ce.Key)
			return
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return keys
}

// nopNotifier satisfies Notifier for validation tests.
type nopNotifier struct{}

func (nopNotifier) Notify(context.Context, *errmon.Notification) error { return nil }

// nopMailer is a Notifier that says it sends email, as mail.Notifier does.
type nopMailer struct{ nopNotifier }

func (nopMailer) SendsEmail() bool { return true }

func TestNewConfigErrors(t *testing.T) {
	db := openSQLite(t).DB
	notifyOK := func(c *errmon.Config) {
		c.SendNotification = true
		c.RecipientEmail = []string{"team@example.com"}
		c.EmailSender = "errmon@example.com"
		c.Notifier = nopMailer{}
	}
	tests := []struct {
		name    string
		mutate  func(*errmon.Config)
		wantKey string
	}{
		{"nil DB", func(c *errmon.Config) { c.DB = nil }, "Config.DB"},
		{"notification without recipients", func(c *errmon.Config) { notifyOK(c); c.RecipientEmail = nil }, "APP_ERROR_RECIPIENT_EMAIL"},
		{"notification without sender", func(c *errmon.Config) { notifyOK(c); c.EmailSender = "" }, "APP_ERROR_EMAIL_SENDER"},
		{"notification without Notifier", func(c *errmon.Config) { notifyOK(c); c.Notifier = nil }, "Config.Notifier"},
		{"URL prefix without leading slash", func(c *errmon.Config) { c.URLPrefix = "dev/error" }, "APP_ERROR_URL_PREFIX"},
		{"URL prefix with a route parameter", func(c *errmon.Config) { c.URLPrefix = "/errors/:id" }, "APP_ERROR_URL_PREFIX"},
		{"URL prefix with a wildcard", func(c *errmon.Config) { c.URLPrefix = "/errors/*all" }, "APP_ERROR_URL_PREFIX"},
		{"bad recipient address", func(c *errmon.Config) { c.RecipientEmail = []string{"ops@example.com", "not an address"} }, "APP_ERROR_RECIPIENT_EMAIL"},
		{"bad sender address", func(c *errmon.Config) { c.EmailSender = "errmon at example.com" }, "APP_ERROR_EMAIL_SENDER"},
		{"BaseURL without scheme", func(c *errmon.Config) { c.BaseURL = "api.example.com" }, "APP_ERROR_BASE_URL"},
		{"BaseURL with another scheme", func(c *errmon.Config) { c.BaseURL = "ftp://example.com" }, "APP_ERROR_BASE_URL"},
		{"BaseURL without host", func(c *errmon.Config) { c.BaseURL = "https://" }, "APP_ERROR_BASE_URL"},
		{"BaseURL unparsable", func(c *errmon.Config) { c.BaseURL = "http://[::1" }, "APP_ERROR_BASE_URL"},
		{"ListSize negative", func(c *errmon.Config) { c.ListSize = -1 }, "APP_DEFAULT_LIST_SIZE"},
		{"ListSize too large", func(c *errmon.Config) { c.ListSize = 1001 }, "APP_DEFAULT_LIST_SIZE"},
		{"subject prefix with a newline", func(c *errmon.Config) { c.SubjectPrefix = "prod\r\nBcc: x@example.com" }, "APP_ERROR_SUBJECT_PREFIX"},
		{"RecordStatus below 100", func(c *errmon.Config) { c.RecordStatus = 99 }, "APP_ERROR_RECORD_STATUS"},
		{"RecordStatus above 599", func(c *errmon.Config) { c.RecordStatus = 600 }, "APP_ERROR_RECORD_STATUS"},
		{"FlushInterval negative", func(c *errmon.Config) { c.FlushInterval = -time.Second }, "APP_ERROR_FLUSH_INTERVAL"},
		{"MaxPending negative", func(c *errmon.Config) { c.MaxPending = -1 }, "APP_ERROR_MAX_PENDING"},
		{"NotifyEvery negative", func(c *errmon.Config) { c.NotifyEvery = -time.Minute }, "APP_ERROR_NOTIFY_EVERY"},
		{"NotifyThresholds with zero", func(c *errmon.Config) { c.NotifyThresholds = []int64{10, 0} }, "APP_ERROR_NOTIFY_THRESHOLDS"},
		{"NotifyTimeout negative", func(c *errmon.Config) { c.NotifyTimeout = -time.Second }, "Config.NotifyTimeout"},
		{"CloseTimeout negative", func(c *errmon.Config) { c.CloseTimeout = -time.Second }, "Config.CloseTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := errmon.DefaultConfig()
			cfg.Output = io.Discard
			cfg.DB = db
			tt.mutate(&cfg)
			// Validate says the same, without a database (a nil DB is then
			// no fault).
			verr := cfg.Validate()
			if tt.wantKey == "Config.DB" {
				if verr != nil {
					t.Errorf("Validate() = %v for a config whose only fault is a nil DB", verr)
				}
			} else if keys := configErrorKeys(verr); !slices.Equal(keys, []string{tt.wantKey}) {
				t.Errorf("Validate() keys = %q, want only %q (error: %v)", keys, tt.wantKey, verr)
			}
			m, err := errmon.New(cfg)
			if err == nil {
				m.Close()
				t.Fatalf("New() accepted an invalid config (%s)", tt.name)
			}
			if m != nil {
				t.Errorf("New() returned a monitor with error %v", err)
			}
			var ce *errmon.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("errors.As(%v, *ConfigError) = false", err)
			}
			if ce.Key != tt.wantKey {
				t.Errorf("ConfigError.Key = %q, want %q (error: %v)", ce.Key, tt.wantKey, err)
			}
			if keys := configErrorKeys(err); !slices.Equal(keys, []string{tt.wantKey}) {
				t.Errorf("ConfigError keys = %q, want only %q (error: %v)", keys, tt.wantKey, err)
			}
			if !strings.Contains(err.Error(), tt.wantKey) {
				t.Errorf("error %q does not name %s", err, tt.wantKey)
			}
		})
	}

	t.Run("a Notifier that does not send email needs no addresses", func(t *testing.T) {
		cfg := errmon.DefaultConfig()
		cfg.Output = io.Discard
		cfg.DB = db
		cfg.SendNotification = true
		cfg.Notifier = nopNotifier{} // a webhook, a chat
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Validate: %v", err)
		}
		m, err := errmon.New(cfg)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		m.Close()
	})

	t.Run("Validate needs no database and changes nothing", func(t *testing.T) {
		cfg := errmon.Config{MaskedKeyHas: []string{" Token "}}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Validate of a zero Config: %v", err)
		}
		if cfg.MaskedKeyHas[0] != " Token " || cfg.URLPrefix != "" {
			t.Errorf("Validate changed its Config: %+v", cfg)
		}
	})

	t.Run("every fault is reported", func(t *testing.T) {
		cfg := errmon.Config{URLPrefix: "errors", ListSize: 5000, EmailSender: "nobody"}
		_, err := errmon.New(cfg)
		keys := configErrorKeys(err)
		for _, want := range []string{"Config.DB", "APP_ERROR_URL_PREFIX", "APP_DEFAULT_LIST_SIZE", "APP_ERROR_EMAIL_SENDER"} {
			if !slices.Contains(keys, want) {
				t.Errorf("ConfigError keys = %q, missing %s (error: %v)", keys, want, err)
			}
		}
	})

	t.Run("environment values are validated by New", func(t *testing.T) {
		clearConfigEnv(t)
		t.Setenv("APP_ERROR_URL_PREFIX", "errors")
		cfg, err := errmon.ConfigFromEnv()
		if err != nil {
			t.Fatalf("ConfigFromEnv: %v", err)
		}
		cfg.DB = db
		_, err = errmon.New(cfg)
		var ce *errmon.ConfigError
		if !errors.As(err, &ce) || ce.Key != "APP_ERROR_URL_PREFIX" {
			t.Errorf("New() error = %v, want a *ConfigError for APP_ERROR_URL_PREFIX", err)
		}
	})

	t.Run("valid notification config is accepted", func(t *testing.T) {
		cfg := errmon.DefaultConfig()
		cfg.Output = io.Discard
		cfg.DB = db
		notifyOK(&cfg)
		cfg.RecipientEmail = []string{"Ann <ann@example.com>", "bob@example.com"}
		cfg.BaseURL = "https://api.example.com/shop/"
		m, err := errmon.New(cfg)
		if err != nil {
			t.Fatalf("New() = %v", err)
		}
		if err := m.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
}

func TestNewFillsDefaults(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		m, err := errmon.New(errmon.Config{DB: tdb.DB})
		if err != nil {
			t.Fatalf("New(Config{DB: db}) = %v", err)
		}
		defer m.Close()
		cfg := m.Config()
		checks := []struct {
			name      string
			got, want any
		}{
			{"MaskWith", cfg.MaskWith, "**************"},
			{"MaskedKeyHas", strings.Join(cfg.MaskedKeyHas, ","), "password,secret"},
			{"URLPrefix", cfg.URLPrefix, "/dev/error"},
			{"ListSize", cfg.ListSize, store.DefaultListSize},
			{"RecordStatus", cfg.RecordStatus, 500},
			{"FlushInterval", cfg.FlushInterval, time.Second},
			{"MaxPending", cfg.MaxPending, 10000},
			{"MaxBodyBytes", cfg.MaxBodyBytes, int64(64 << 10)},
			{"NotifyTimeout", cfg.NotifyTimeout, 30 * time.Second},
			{"CloseTimeout", cfg.CloseTimeout, 5 * time.Second},
			{"ContextBuilder set", cfg.ContextBuilder != nil, true},
			{"ViewPermission stays nil (the default, decided per request)", cfg.ViewPermission == nil, true},
			{"RecoveryHandler set", cfg.RecoveryHandler != nil, true},
			{"Logger set", cfg.Logger != nil, true},
			{"Output is gin.DefaultErrorWriter (as gin.Recovery)", cfg.Output == gin.DefaultErrorWriter, true},
			{"SendNotification stays off", cfg.SendNotification, false},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("New(Config{DB}).Config().%s = %v, want %v", c.name, c.got, c.want)
			}
		}
		for _, model := range []any{&errmon.ErrorRecord{}, &store.ErrorOccurrence{}, &store.ErrorHourly{}} {
			if !tdb.DB.Migrator().HasTable(model) {
				t.Errorf("New did not create the table of %T", model)
			}
		}
	})

	t.Run("normalizes prefix and keys", func(t *testing.T) {
		db := openSQLite(t).DB
		keys := []string{" Token ", "", "API_KEY"}
		m, err := errmon.New(errmon.Config{DB: db, URLPrefix: "/ops/errors/", MaskedKeyHas: keys})
		if err != nil {
			t.Fatalf("New() = %v", err)
		}
		defer m.Close()
		cfg := m.Config()
		if cfg.URLPrefix != "/ops/errors" {
			t.Errorf("URLPrefix = %q, want %q", cfg.URLPrefix, "/ops/errors")
		}
		if want := []string{"token", "api_key"}; !slices.Equal(cfg.MaskedKeyHas, want) {
			t.Errorf("MaskedKeyHas = %q, want %q", cfg.MaskedKeyHas, want)
		}
		if keys[0] != " Token " {
			t.Errorf("New changed the caller's MaskedKeyHas slice: %q", keys)
		}
	})
}

// TestConfigIsAValue checks that a running monitor shares no slice with
// anyone: not with the Config passed to New, not with what Config()
// returns. Masking must keep hiding the configured keys whatever either
// does to its slices afterwards.
func TestConfigIsAValue(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		keys := []string{"password", "pin"}
		recipients := []string{"team@example.com"}
		thresholds := []int64{10, 100}
		tm := newTestMonitor(t, tdb.DB, func(c *errmon.Config) {
			c.MaskedKeyHas, c.RecipientEmail, c.NotifyThresholds = keys, recipients, thresholds
		})

		// The caller changes its slices after New...
		keys[0], keys[1] = "nothing", "nothing-either"
		recipients[0] = "attacker@example.com"
		thresholds[0] = 1
		// ...and a reader of Config() changes what it got.
		got := tm.Config()
		for i := range got.MaskedKeyHas {
			got.MaskedKeyHas[i] = "unmasked"
		}
		got.RecipientEmail[0] = "attacker@example.com"
		got.NotifyThresholds[0] = 2

		cfg := tm.Config()
		checks := []struct {
			name      string
			got, want any
		}{
			{"MaskedKeyHas", strings.Join(cfg.MaskedKeyHas, ","), "password,pin"},
			{"RecipientEmail", strings.Join(cfg.RecipientEmail, ","), "team@example.com"},
			{"NotifyThresholds", fmt.Sprint(cfg.NotifyThresholds), "[10 100]"},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("Config().%s = %v after the slices were changed, want %v", c.name, c.got, c.want)
			}
		}

		r := tm.engine(false)
		r.POST("/login", func(c *gin.Context) { panic("login failed") })
		serve(r, "POST", "/login?password=hunter2&pin=4321&user=ann",
			strings.NewReader(`{"password":"body-hunter2","nested":{"pin":"body-4321"}}`),
			map[string]string{"Content-Type": "application/json"})
		recs := tm.records(t)
		if len(recs) != 1 {
			t.Fatalf("%d errors stored, want 1", len(recs))
		}
		for _, secret := range []string{"hunter2", "4321"} {
			if strings.Contains(recs[0].RequestData, secret) {
				t.Errorf("stored request data shows %q: %s", secret, recs[0].RequestData)
			}
		}
		if !strings.Contains(recs[0].RequestData, "ann") {
			t.Errorf("stored request data lost the unmasked field: %s", recs[0].RequestData)
		}
	})
}

// TestDefaultMaskedKeysUnchangeable checks that the default key list can
// only be read as a copy: changing DefaultConfig()'s list, or a monitor's
// Config() list, leaves the default masking alone.
func TestDefaultMaskedKeysUnchangeable(t *testing.T) {
	def := errmon.DefaultConfig()
	for i := range def.MaskedKeyHas {
		def.MaskedKeyHas[i] = "changed"
	}
	if got := strings.Join(errmon.DefaultConfig().MaskedKeyHas, ","); got != "password,secret" {
		t.Fatalf("DefaultConfig().MaskedKeyHas = %q after a caller changed its copy", got)
	}
	// An empty list falls back to the default, also after such a change.
	tm := sqliteMonitor(t, func(c *errmon.Config) { c.MaskedKeyHas = nil })
	got := tm.Config()
	got.MaskedKeyHas[0] = "changed"
	if s := strings.Join(tm.Config().MaskedKeyHas, ","); s != "password,secret" {
		t.Errorf("Config().MaskedKeyHas = %q, want the default", s)
	}
	r := tm.engine(false)
	r.GET("/p", func(c *gin.Context) { panic("p") })
	serve(r, "GET", "/p?password=hunter2&client_secret=s3cr3tvalue", nil, nil)
	recs := tm.records(t)
	if len(recs) != 1 || strings.Contains(recs[0].RequestData, "hunter2") || strings.Contains(recs[0].RequestData, "s3cr3tvalue") {
		t.Errorf("default masking broken: %+v", recs)
	}
}
