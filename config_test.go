package errmon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/errmon/errmon/internal/store"
	"github.com/gin-gonic/gin"
)

// allEnvKeys is every key ConfigFromEnv reads.
var allEnvKeys = []string{
	envSendNotification, envRecipientEmail, envSubjectPrefix, envMaskWith,
	envMaskedKeyHas, envURLPrefix, envEmailSender, envListSize, envBaseURL,
	envRecordStatus, envFlushInterval, envMaxPending, envMaxBodyBytes,
	envNotifyEvery, envNotifyThresholds,
}

// clearConfigEnv unsets every APP_ERROR_* key for the test (restored after).
func clearConfigEnv(t *testing.T) {
	t.Helper()
	for _, k := range allEnvKeys {
		t.Setenv(k, "") // registers the restore
		os.Unsetenv(k)
	}
}

// configErrorKeys returns the Key of every *ConfigError joined in err.
func configErrorKeys(err error) []string {
	var keys []string
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		var ce *ConfigError
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

func TestDefaultConfig(t *testing.T) {
	cfg := DefaultConfig()
	checks := []struct {
		name      string
		got, want any
	}{
		{"SendNotification", cfg.SendNotification, false},
		{"RecipientEmail", len(cfg.RecipientEmail), 0},
		{"SubjectPrefix", cfg.SubjectPrefix, ""},
		{"MaskWith", cfg.MaskWith, "**************"},
		{"MaskedKeyHas", strings.Join(cfg.MaskedKeyHas, ","), "password,secret"},
		{"URLPrefix", cfg.URLPrefix, "/dev/error"},
		{"EmailSender", cfg.EmailSender, ""},
		{"ListSize", cfg.ListSize, 20},
		{"BaseURL", cfg.BaseURL, ""},
		{"RecordStatus", cfg.RecordStatus, 500},
		{"FlushInterval", cfg.FlushInterval, time.Second},
		{"MaxPending", cfg.MaxPending, 10000},
		{"MaxBodyBytes", cfg.MaxBodyBytes, int64(64 << 10)},
		{"NotifyEvery", cfg.NotifyEvery, time.Duration(0)},
		{"NotifyThresholds", len(cfg.NotifyThresholds), 0},
		{"NotifyTimeout", cfg.NotifyTimeout, 30 * time.Second},
		{"CloseTimeout", cfg.CloseTimeout, 5 * time.Second},
		{"DB is nil", cfg.DB == nil, true},
		{"Notifier is nil", cfg.Notifier == nil, true},
		{"Output is gin.DefaultErrorWriter", cfg.Output == gin.DefaultErrorWriter, true},
		{"RecoveryHandler set", cfg.RecoveryHandler != nil, true},
		{"ContextBuilder is DefaultContextBuilder", cfg.ContextBuilder == ContextBuilder(DefaultContextBuilder{}), true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("DefaultConfig().%s = %v, want %v", c.name, c.got, c.want)
		}
	}

	// Each call returns its own list: changing it leaves the defaults alone.
	cfg.MaskedKeyHas[0] = "changed"
	if got := DefaultConfig().MaskedKeyHas[0]; got != "password" {
		t.Errorf("DefaultConfig shares its MaskedKeyHas slice: got %q after a caller changed its copy", got)
	}
	if defaultMaskedKeyHas[0] != "password" {
		t.Errorf("defaultMaskedKeyHas changed through a DefaultConfig copy: %v", defaultMaskedKeyHas)
	}
}

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		check func(t *testing.T, cfg Config)
	}{
		{"nothing set gives the defaults", nil, func(t *testing.T, cfg Config) {
			def := DefaultConfig()
			if cfg.URLPrefix != def.URLPrefix || cfg.ListSize != def.ListSize || cfg.MaskWith != def.MaskWith ||
				!slices.Equal(cfg.MaskedKeyHas, def.MaskedKeyHas) || cfg.RecordStatus != def.RecordStatus ||
				cfg.FlushInterval != def.FlushInterval || cfg.Output != def.Output || cfg.SendNotification {
				t.Errorf("ConfigFromEnv() with no keys = %+v, want DefaultConfig()", cfg)
			}
		}},
		{envSendNotification + " true", map[string]string{envSendNotification: "true"}, func(t *testing.T, cfg Config) {
			if !cfg.SendNotification {
				t.Error("SendNotification = false, want true")
			}
		}},
		{envSendNotification + " padded 1", map[string]string{envSendNotification: " 1 "}, func(t *testing.T, cfg Config) {
			if !cfg.SendNotification {
				t.Error("SendNotification = false, want true")
			}
		}},
		{envSendNotification + " false", map[string]string{envSendNotification: "false"}, func(t *testing.T, cfg Config) {
			if cfg.SendNotification {
				t.Error("SendNotification = true, want false")
			}
		}},
		{envRecipientEmail + " comma list", map[string]string{envRecipientEmail: " ann@example.com, Bob <bob@example.com> ,,"}, func(t *testing.T, cfg Config) {
			want := []string{"ann@example.com", "Bob <bob@example.com>"}
			if !slices.Equal(cfg.RecipientEmail, want) {
				t.Errorf("RecipientEmail = %q, want %q", cfg.RecipientEmail, want)
			}
		}},
		{envSubjectPrefix, map[string]string{envSubjectPrefix: "  shop-prod "}, func(t *testing.T, cfg Config) {
			if cfg.SubjectPrefix != "shop-prod" {
				t.Errorf("SubjectPrefix = %q, want %q", cfg.SubjectPrefix, "shop-prod")
			}
		}},
		{envMaskWith + " keeps spaces", map[string]string{envMaskWith: " [hidden] "}, func(t *testing.T, cfg Config) {
			if cfg.MaskWith != " [hidden] " {
				t.Errorf("MaskWith = %q, want %q", cfg.MaskWith, " [hidden] ")
			}
		}},
		{envMaskedKeyHas + " replaces the default list", map[string]string{envMaskedKeyHas: "token, Api_Key"}, func(t *testing.T, cfg Config) {
			want := []string{"token", "Api_Key"}
			if !slices.Equal(cfg.MaskedKeyHas, want) {
				t.Errorf("MaskedKeyHas = %q, want %q (the default list replaced, not extended)", cfg.MaskedKeyHas, want)
			}
		}},
		{envURLPrefix, map[string]string{envURLPrefix: " /ops/errors "}, func(t *testing.T, cfg Config) {
			if cfg.URLPrefix != "/ops/errors" {
				t.Errorf("URLPrefix = %q, want %q", cfg.URLPrefix, "/ops/errors")
			}
		}},
		{envEmailSender, map[string]string{envEmailSender: "errmon@example.com"}, func(t *testing.T, cfg Config) {
			if cfg.EmailSender != "errmon@example.com" {
				t.Errorf("EmailSender = %q", cfg.EmailSender)
			}
		}},
		{envListSize, map[string]string{envListSize: "50"}, func(t *testing.T, cfg Config) {
			if cfg.ListSize != 50 {
				t.Errorf("ListSize = %d, want 50", cfg.ListSize)
			}
		}},
		{envBaseURL, map[string]string{envBaseURL: "https://api.example.com/shop"}, func(t *testing.T, cfg Config) {
			if cfg.BaseURL != "https://api.example.com/shop" {
				t.Errorf("BaseURL = %q", cfg.BaseURL)
			}
		}},
		{envRecordStatus, map[string]string{envRecordStatus: "400"}, func(t *testing.T, cfg Config) {
			if cfg.RecordStatus != 400 {
				t.Errorf("RecordStatus = %d, want 400", cfg.RecordStatus)
			}
		}},
		{envFlushInterval, map[string]string{envFlushInterval: "250ms"}, func(t *testing.T, cfg Config) {
			if cfg.FlushInterval != 250*time.Millisecond {
				t.Errorf("FlushInterval = %v, want 250ms", cfg.FlushInterval)
			}
		}},
		{envMaxPending, map[string]string{envMaxPending: "123"}, func(t *testing.T, cfg Config) {
			if cfg.MaxPending != 123 {
				t.Errorf("MaxPending = %d, want 123", cfg.MaxPending)
			}
		}},
		{envMaxBodyBytes + " negative keeps none", map[string]string{envMaxBodyBytes: "-1"}, func(t *testing.T, cfg Config) {
			if cfg.MaxBodyBytes != -1 {
				t.Errorf("MaxBodyBytes = %d, want -1", cfg.MaxBodyBytes)
			}
		}},
		{envNotifyEvery, map[string]string{envNotifyEvery: "1h30m"}, func(t *testing.T, cfg Config) {
			if cfg.NotifyEvery != 90*time.Minute {
				t.Errorf("NotifyEvery = %v, want 1h30m", cfg.NotifyEvery)
			}
		}},
		{envNotifyEvery + " 0 is off", map[string]string{envNotifyEvery: "0"}, func(t *testing.T, cfg Config) {
			if cfg.NotifyEvery != 0 {
				t.Errorf("NotifyEvery = %v, want 0", cfg.NotifyEvery)
			}
		}},
		{envNotifyThresholds + " comma list", map[string]string{envNotifyThresholds: "10, 100,1000"}, func(t *testing.T, cfg Config) {
			if want := []int64{10, 100, 1000}; !slices.Equal(cfg.NotifyThresholds, want) {
				t.Errorf("NotifyThresholds = %v, want %v", cfg.NotifyThresholds, want)
			}
		}},
		{"every key at once", map[string]string{
			envSendNotification: "true", envRecipientEmail: "a@example.com,b@example.com",
			envSubjectPrefix: "p", envMaskWith: "#", envMaskedKeyHas: "pin", envURLPrefix: "/e",
			envEmailSender: "s@example.com", envListSize: "5", envBaseURL: "http://localhost:8080",
			envRecordStatus: "404", envFlushInterval: "2s", envMaxPending: "7", envMaxBodyBytes: "1024",
			envNotifyEvery: "10m", envNotifyThresholds: "3",
		}, func(t *testing.T, cfg Config) {
			if !cfg.SendNotification || len(cfg.RecipientEmail) != 2 || cfg.SubjectPrefix != "p" ||
				cfg.MaskWith != "#" || !slices.Equal(cfg.MaskedKeyHas, []string{"pin"}) || cfg.URLPrefix != "/e" ||
				cfg.EmailSender != "s@example.com" || cfg.ListSize != 5 || cfg.BaseURL != "http://localhost:8080" ||
				cfg.RecordStatus != 404 || cfg.FlushInterval != 2*time.Second || cfg.MaxPending != 7 ||
				cfg.MaxBodyBytes != 1024 || cfg.NotifyEvery != 10*time.Minute ||
				!slices.Equal(cfg.NotifyThresholds, []int64{3}) {
				t.Errorf("ConfigFromEnv() = %+v: some key was not applied", cfg)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearConfigEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			cfg, err := ConfigFromEnv()
			if err != nil {
				t.Fatalf("ConfigFromEnv() error = %v", err)
			}
			tt.check(t, cfg)
		})
	}
}

func TestConfigFromEnvBadValues(t *testing.T) {
	tests := []struct {
		key, value string
	}{
		{envSendNotification, "yes please"},
		{envSendNotification, "on"},
		{envListSize, "ten"},
		{envListSize, "2.5"},
		{envRecordStatus, "5xx"},
		{envMaxPending, "1e3"},
		{envMaxBodyBytes, "64k"},
		{envFlushInterval, "1"}, // a duration needs its unit
		{envFlushInterval, "soon"},
		{envNotifyEvery, "hourly"},
		{envNotifyThresholds, "10,x,1000"},
		{envNotifyThresholds, "10,-5"},
		{envNotifyThresholds, "0"},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			clearConfigEnv(t)
			t.Setenv(tt.key, tt.value)
			_, err := ConfigFromEnv()
			if err == nil {
				t.Fatalf("ConfigFromEnv() with %s=%q: no error", tt.key, tt.value)
			}
			if !strings.Contains(err.Error(), tt.key) {
				t.Errorf("error %q does not name the key %s", err, tt.key)
			}
		})
	}

	t.Run("every bad key is reported", func(t *testing.T) {
		clearConfigEnv(t)
		t.Setenv(envListSize, "many")
		t.Setenv(envFlushInterval, "often")
		t.Setenv(envURLPrefix, "/fine")
		_, err := ConfigFromEnv()
		if err == nil {
			t.Fatal("no error")
		}
		for _, key := range []string{envListSize, envFlushInterval} {
			if !strings.Contains(err.Error(), key) {
				t.Errorf("error %q does not name %s", err, key)
			}
		}
		if strings.Contains(err.Error(), envURLPrefix) {
			t.Errorf("error %q names %s, whose value is valid", err, envURLPrefix)
		}
	})
}

// nopNotifier satisfies Notifier for validation tests.
type nopNotifier struct{}

func (nopNotifier) Notify(context.Context, *Notification) error { return nil }

// nopMailer is a Notifier that says it sends email, as mail.Notifier does.
type nopMailer struct{ nopNotifier }

func (nopMailer) SendsEmail() bool { return true }

func TestNewConfigErrors(t *testing.T) {
	db := openSQLite(t).DB
	notifyOK := func(c *Config) {
		c.SendNotification = true
		c.RecipientEmail = []string{"team@example.com"}
		c.EmailSender = "errmon@example.com"
		c.Notifier = nopMailer{}
	}
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantKey string
	}{
		{"nil DB", func(c *Config) { c.DB = nil }, "Config.DB"},
		{"notification without recipients", func(c *Config) { notifyOK(c); c.RecipientEmail = nil }, envRecipientEmail},
		{"notification without sender", func(c *Config) { notifyOK(c); c.EmailSender = "" }, envEmailSender},
		{"notification without Notifier", func(c *Config) { notifyOK(c); c.Notifier = nil }, "Config.Notifier"},
		{"URL prefix without leading slash", func(c *Config) { c.URLPrefix = "dev/error" }, envURLPrefix},
		{"URL prefix with a route parameter", func(c *Config) { c.URLPrefix = "/errors/:id" }, envURLPrefix},
		{"URL prefix with a wildcard", func(c *Config) { c.URLPrefix = "/errors/*all" }, envURLPrefix},
		{"bad recipient address", func(c *Config) { c.RecipientEmail = []string{"ops@example.com", "not an address"} }, envRecipientEmail},
		{"bad sender address", func(c *Config) { c.EmailSender = "errmon at example.com" }, envEmailSender},
		{"BaseURL without scheme", func(c *Config) { c.BaseURL = "api.example.com" }, envBaseURL},
		{"BaseURL with another scheme", func(c *Config) { c.BaseURL = "ftp://example.com" }, envBaseURL},
		{"BaseURL without host", func(c *Config) { c.BaseURL = "https://" }, envBaseURL},
		{"BaseURL unparsable", func(c *Config) { c.BaseURL = "http://[::1" }, envBaseURL},
		{"ListSize negative", func(c *Config) { c.ListSize = -1 }, envListSize},
		{"ListSize too large", func(c *Config) { c.ListSize = 1001 }, envListSize},
		{"subject prefix with a newline", func(c *Config) { c.SubjectPrefix = "prod\r\nBcc: x@example.com" }, envSubjectPrefix},
		{"RecordStatus below 100", func(c *Config) { c.RecordStatus = 99 }, envRecordStatus},
		{"RecordStatus above 599", func(c *Config) { c.RecordStatus = 600 }, envRecordStatus},
		{"FlushInterval negative", func(c *Config) { c.FlushInterval = -time.Second }, envFlushInterval},
		{"MaxPending negative", func(c *Config) { c.MaxPending = -1 }, envMaxPending},
		{"NotifyEvery negative", func(c *Config) { c.NotifyEvery = -time.Minute }, envNotifyEvery},
		{"NotifyThresholds with zero", func(c *Config) { c.NotifyThresholds = []int64{10, 0} }, envNotifyThresholds},
		{"NotifyTimeout negative", func(c *Config) { c.NotifyTimeout = -time.Second }, "Config.NotifyTimeout"},
		{"CloseTimeout negative", func(c *Config) { c.CloseTimeout = -time.Second }, "Config.CloseTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
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
			m, err := New(cfg)
			if err == nil {
				m.Close()
				t.Fatalf("New() accepted an invalid config (%s)", tt.name)
			}
			if m != nil {
				t.Errorf("New() returned a monitor with error %v", err)
			}
			var ce *ConfigError
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
		cfg := DefaultConfig()
		cfg.Output = io.Discard
		cfg.DB = db
		cfg.SendNotification = true
		cfg.Notifier = nopNotifier{} // a webhook, a chat
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Validate: %v", err)
		}
		m, err := New(cfg)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		m.Close()
	})

	t.Run("Validate needs no database and changes nothing", func(t *testing.T) {
		cfg := Config{MaskedKeyHas: []string{" Token "}}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Validate of a zero Config: %v", err)
		}
		if cfg.MaskedKeyHas[0] != " Token " || cfg.URLPrefix != "" {
			t.Errorf("Validate changed its Config: %+v", cfg)
		}
	})

	t.Run("every fault is reported", func(t *testing.T) {
		cfg := Config{URLPrefix: "errors", ListSize: 5000, EmailSender: "nobody"}
		_, err := New(cfg)
		keys := configErrorKeys(err)
		for _, want := range []string{"Config.DB", envURLPrefix, envListSize, envEmailSender} {
			if !slices.Contains(keys, want) {
				t.Errorf("ConfigError keys = %q, missing %s (error: %v)", keys, want, err)
			}
		}
	})

	t.Run("environment values are validated by New", func(t *testing.T) {
		clearConfigEnv(t)
		t.Setenv(envURLPrefix, "errors")
		cfg, err := ConfigFromEnv()
		if err != nil {
			t.Fatalf("ConfigFromEnv: %v", err)
		}
		cfg.DB = db
		_, err = New(cfg)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Key != envURLPrefix {
			t.Errorf("New() error = %v, want a *ConfigError for %s", err, envURLPrefix)
		}
	})

	t.Run("valid notification config is accepted", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.Output = io.Discard
		cfg.DB = db
		notifyOK(&cfg)
		cfg.RecipientEmail = []string{"Ann <ann@example.com>", "bob@example.com"}
		cfg.BaseURL = "https://api.example.com/shop/"
		m, err := New(cfg)
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
		m, err := New(Config{DB: tdb.DB})
		if err != nil {
			t.Fatalf("New(Config{DB: db}) = %v", err)
		}
		defer m.Close()
		cfg := m.Config()
		checks := []struct {
			name      string
			got, want any
		}{
			{"MaskWith", cfg.MaskWith, defaultMaskWith},
			{"MaskedKeyHas", strings.Join(cfg.MaskedKeyHas, ","), "password,secret"},
			{"URLPrefix", cfg.URLPrefix, defaultURLPrefix},
			{"ListSize", cfg.ListSize, store.DefaultListSize},
			{"RecordStatus", cfg.RecordStatus, defaultRecordStatus},
			{"FlushInterval", cfg.FlushInterval, defaultFlushInterval},
			{"MaxPending", cfg.MaxPending, defaultMaxPending},
			{"MaxBodyBytes", cfg.MaxBodyBytes, int64(defaultMaxBodyBytes)},
			{"NotifyTimeout", cfg.NotifyTimeout, defaultNotifyTimeout},
			{"CloseTimeout", cfg.CloseTimeout, defaultCloseTimeout},
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
		for _, model := range []any{&ErrorRecord{}, &store.ErrorOccurrence{}, &store.ErrorHourly{}} {
			if !tdb.DB.Migrator().HasTable(model) {
				t.Errorf("New did not create the table of %T", model)
			}
		}
	})

	t.Run("normalizes prefix and keys", func(t *testing.T) {
		db := openSQLite(t).DB
		keys := []string{" Token ", "", "API_KEY"}
		m, err := New(Config{DB: db, URLPrefix: "/ops/errors/", MaskedKeyHas: keys})
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
		tm := newTestMonitor(t, tdb.DB, func(c *Config) {
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
	def := DefaultConfig()
	for i := range def.MaskedKeyHas {
		def.MaskedKeyHas[i] = "changed"
	}
	if got := strings.Join(DefaultConfig().MaskedKeyHas, ","); got != "password,secret" {
		t.Fatalf("DefaultConfig().MaskedKeyHas = %q after a caller changed its copy", got)
	}
	// An empty list falls back to the default, also after such a change.
	tm := sqliteMonitor(t, func(c *Config) { c.MaskedKeyHas = nil })
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

// TestConfigCloneCoversEverySliceAndMap fails when Config gains a slice or
// map field that clone does not copy.
func TestConfigCloneCoversEverySliceAndMap(t *testing.T) {
	var cfg Config
	v := reflect.ValueOf(&cfg).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Slice:
			f.Set(reflect.MakeSlice(f.Type(), 1, 1))
		case reflect.Map:
			f.Set(reflect.MakeMap(f.Type()))
			f.SetMapIndex(reflect.New(f.Type().Key()).Elem(), reflect.New(f.Type().Elem()).Elem())
		}
	}
	c := reflect.ValueOf(cfg.clone())
	for i := 0; i < v.NumField(); i++ {
		name := v.Type().Field(i).Name
		switch f := v.Field(i); f.Kind() {
		case reflect.Slice:
			if c.Field(i).Pointer() == f.Pointer() {
				t.Errorf("Config.clone shares the slice Config.%s", name)
			}
		case reflect.Map:
			if c.Field(i).Pointer() == f.Pointer() {
				t.Errorf("Config.clone shares the map Config.%s", name)
			}
		case reflect.Pointer, reflect.Array:
			if name == "DB" || name == "Logger" {
				continue // shared on purpose: the application's own
			}
			t.Errorf("Config.%s is a %s: decide whether clone must copy it, then extend this test", name, f.Kind())
		}
	}
}
