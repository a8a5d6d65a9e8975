package errmon

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
)

// allEnvKeys is every key ConfigFromEnv reads.
var allEnvKeys = []string{
	envSendNotification, envRecipientEmail, envSubjectPrefix, envMaskWith,
	envMaskedKeyHas, envURLPrefix, envEmailSender, envListSize, envBaseURL,
	envRecordStatus, envFlushInterval, envMaxPending, envMaxBodyBytes,
	envNotifyEvery, envNotifyThresholds, envRetentionDays, envMaxErrors,
}

// clearConfigEnv unsets every APP_ERROR_* key for the test (restored after).
func clearConfigEnv(t *testing.T) {
	t.Helper()
	for _, k := range allEnvKeys {
		t.Setenv(k, "") // registers the restore
		os.Unsetenv(k)
	}
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
