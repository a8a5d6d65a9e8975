package tests

import (
	"io"
	"testing"
	"time"

	"github.com/errmon/errmon"
	"github.com/gin-gonic/gin"
	"gorm.io/gorm"
)

// hzConfig is a quiet config on db with a fast writer.
func hzConfig(db *gorm.DB, log *syncBuffer) errmon.Config {
	cfg := errmon.DefaultConfig()
	cfg.DB = db
	cfg.Output = io.Discard
	cfg.FlushInterval = 20 * time.Millisecond
	cfg.CloseTimeout = 2 * time.Second
	cfg.Logger = log.logger()
	return cfg
}

func hzNew(t testing.TB, cfg errmon.Config) *errmon.Monitor {
	t.Helper()
	m, err := errmon.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

// hzReleaseMode puts gin in release mode (no route log) for the test and
// restores the mode it found afterwards.
func hzReleaseMode(t testing.TB) {
	prev := gin.Mode()
	gin.SetMode(gin.ReleaseMode)
	t.Cleanup(func() { gin.SetMode(prev) })
}
