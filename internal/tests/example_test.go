package tests_test

// errmon's examples that store errors, in a database: each opens a SQLite
// file of its own. They are package examples (Example_new for
// errmon.New, ...) since the identifiers they show are errmon's, not this
// package's; the root package keeps the examples that need no database
// (Config.Validate, NormalizeMessage, LocalOnly).

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/errmon/errmon"
	"github.com/gin-gonic/gin"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// get sends a GET request to h and returns the response status.
func get(h http.Handler, target string) int {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
	return w.Code
}

// printErrors prints the stored errors, one line each.
func printErrors(db *gorm.DB) {
	var rows []errmon.ErrorRecord
	if err := db.Model(&errmon.ErrorRecord{}).Order("exception_name, route").Find(&rows).Error; err != nil {
		log.Fatal(err)
	}
	for _, e := range rows {
		fmt.Printf("%s on %q: count %d\n", e.ExceptionName, e.Route, e.Count)
	}
}

// Example_new shows errmon.New.
func Example_new() {
	gin.SetMode(gin.ReleaseMode)
	dir, err := os.MkdirTemp("", "errmon-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := gorm.Open(sqlite.Open(filepath.Join(dir, "app.db")), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		log.Fatal(err)
	}

	cfg := errmon.DefaultConfig()
	cfg.DB = db
	cfg.Output = io.Discard // no panic log in this example
	m, err := errmon.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	r := gin.New()
	m.InitApp(r) // the middleware, and the dashboard under /dev/error
	r.GET("/items", func(c *gin.Context) {
		i, _ := strconv.Atoi(c.Query("i"))
		items := []string{"a", "b", "c"}
		c.String(http.StatusOK, items[i])
	})

	fmt.Println(get(r, "/items?i=1"))
	fmt.Println(get(r, "/items?i=5")) // index out of range
	fmt.Println(get(r, "/items?i=7")) // the same bug

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Flush(ctx); err != nil {
		log.Fatal(err)
	}
	printErrors(db)
	// Output:
	// 200
	// 500
	// 500
	// runtime.boundsError on "/items": count 2
}

// Example_middleware shows errmon.Middleware.
func Example_middleware() {
	gin.SetMode(gin.ReleaseMode)
	dir, err := os.MkdirTemp("", "errmon-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := gorm.Open(sqlite.Open(filepath.Join(dir, "app.db")), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		log.Fatal(err)
	}

	cfg := errmon.DefaultConfig()
	cfg.DB = db
	cfg.Output = io.Discard
	r := gin.New()
	r.Use(errmon.Middleware(cfg)) // panics if cfg is invalid; makes the monitor the default
	defer func() {
		errmon.Default().Close()
		errmon.SetDefault(nil)
	}()

	r.GET("/pay", func(c *gin.Context) {
		_ = c.Error(errors.New("payment gateway timeout"))
		c.AbortWithStatus(http.StatusBadGateway)
	})
	r.GET("/cart", func(c *gin.Context) {
		_ = c.Error(errors.New("coupon expired")) // below 500: not recorded
		c.AbortWithStatus(http.StatusBadRequest)
	})
	fmt.Println(get(r, "/pay"))
	fmt.Println(get(r, "/cart"))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := errmon.Default().Flush(ctx); err != nil {
		log.Fatal(err)
	}
	printErrors(db)
	// Output:
	// 502
	// 400
	// *errors.errorString on "/pay": count 1
}

// Example_track shows errmon.Track.
func Example_track() {
	gin.SetMode(gin.ReleaseMode)
	dir, err := os.MkdirTemp("", "errmon-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := gorm.Open(sqlite.Open(filepath.Join(dir, "app.db")), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		log.Fatal(err)
	}

	cfg := errmon.DefaultConfig()
	cfg.DB = db
	cfg.Output = io.Discard
	m, err := errmon.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	errmon.SetDefault(m) // errmon.Track records with the default monitor
	defer func() {
		m.Close()
		errmon.SetDefault(nil)
	}()

	r := gin.New() // no middleware: only the tracked handler is monitored
	r.GET("/orders/:id", errmon.Track(func(c *gin.Context) {
		err := fmt.Errorf("load order %s: %w", c.Param("id"), sql.ErrNoRows)
		_ = c.AbortWithError(http.StatusInternalServerError, err)
	}))
	fmt.Println(get(r, "/orders/41"))
	fmt.Println(get(r, "/orders/42")) // numbers in messages do not split a group

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Flush(ctx); err != nil {
		log.Fatal(err)
	}
	printErrors(db)
	// Output:
	// 500
	// 500
	// *errors.errorString on "/orders/:id": count 2
}

// Example_monitorRecord shows Monitor.Record.
func Example_monitorRecord() {
	gin.SetMode(gin.ReleaseMode)
	dir, err := os.MkdirTemp("", "errmon-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := gorm.Open(sqlite.Open(filepath.Join(dir, "app.db")), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		log.Fatal(err)
	}

	cfg := errmon.DefaultConfig()
	cfg.DB = db
	cfg.Output = io.Discard
	m, err := errmon.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	r := gin.New()
	m.InitApp(r)
	r.GET("/report", func(c *gin.Context) {
		// The request succeeds, but someone should know.
		m.Record(c, errors.New("cache refresh failed; serving stale data"))
		c.String(http.StatusOK, "stale but fine")
	})
	fmt.Println(get(r, "/report"))

	// Outside a request, pass a nil context.
	m.Record(nil, errors.New("nightly export failed"))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Flush(ctx); err != nil {
		log.Fatal(err)
	}
	var rows []errmon.ErrorRecord
	db.Model(&errmon.ErrorRecord{}).Order("message").Find(&rows)
	for _, e := range rows {
		fmt.Printf("%q route=%q count=%d\n", e.Message, e.Route, e.Count)
	}
	// Output:
	// 200
	// "cache refresh failed; serving stale data" route="/report" count=1
	// "nightly export failed" route="" count=1
}

// Example_monitorGo shows Monitor.Recover in a goroutine, as Monitor.Go
// uses it.
func Example_monitorGo() {
	dir, err := os.MkdirTemp("", "errmon-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := gorm.Open(sqlite.Open(filepath.Join(dir, "app.db")), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		log.Fatal(err)
	}
	cfg := errmon.DefaultConfig()
	cfg.DB = db
	cfg.Output = io.Discard // no panic log in this example
	m, err := errmon.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	// A background job whose panic would otherwise end the process.
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer m.Recover() // records the panic, stored before the goroutine ends
		var cache map[string]int
		cache["warm"] = 1 // assignment to entry in nil map
	}()
	<-done
	printErrors(db)
	// Output:
	// runtime.plainError on "": count 1
}
