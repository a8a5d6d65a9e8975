// Command basic is a small gin service monitored by errmon, on an embedded
// SQLite file. Its routes panic and fail on purpose; open the dashboard to
// see what errmon made of them.
//
//	go run ./examples/basic            # then open http://127.0.0.1:8080/
//	go run ./examples/basic -addr 127.0.0.1:9000 -db /tmp/errors.db
//
// The database file can also be set with ERRMON_EXAMPLE_DB; the APP_ERROR_*
// variables configure errmon (see errmon.ConfigFromEnv).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/errmon/errmon"
	"github.com/gin-gonic/gin"
	"github.com/glebarez/sqlite" // pure Go: no C compiler needed
	"gorm.io/gorm"
)

// errOutOfStock is what the /fail route reports with c.Error.
var errOutOfStock = errors.New("out of stock")

func main() {
	defaultDB := os.Getenv("ERRMON_EXAMPLE_DB")
	if defaultDB == "" {
		defaultDB = "errmon-example.db"
	}
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	dbPath := flag.String("db", defaultDB, "SQLite file for the errors (env ERRMON_EXAMPLE_DB)")
	flag.Parse()
	if err := run(*addr, *dbPath); err != nil {
		log.Fatal(err)
	}
}

func run(addr, dbPath string) error {
	db, err := gorm.Open(sqlite.Open(dbPath+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)"), &gorm.Config{})
	if err != nil {
		return fmt.Errorf("open %s: %w", dbPath, err)
	}

	cfg, err := errmon.ConfigFromEnv()
	if err != nil {
		return err
	}
	cfg.DB = db
	m, err := errmon.New(cfg)
	if err != nil {
		return err
	}
	defer m.Close()
	// Errors the code only logs reach errmon too: records at slog.LevelError
	// and above go to the dashboard, every record to stderr as before; and,
	// as breadcrumbs, what a failed request logged and queried goes with it.
	logger := slog.New(m.SlogHandler(slog.NewTextHandler(os.Stderr, nil)))
	if err := db.Use(m.GormPlugin()); err != nil {
		return err
	}

	r := gin.New()
	r.Use(gin.Logger())
	m.InitApp(r) // the middleware, and the dashboard under cfg.URLPrefix
	r.Use(func(c *gin.Context) {
		// Your authentication names the user: errors count their users
		// affected (try /fail?user=ann, then ?user=bob).
		if u := c.Query("user"); u != "" {
			errmon.SetUser(c, u)
		}
	})
	routes(r, m, db, logger)

	// A background job: m.Go records its panic (it does not end the
	// process) and stores it before the goroutine ends.
	m.Go(func() { nightlyReport(logger) })

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	base := "http://" + ln.Addr().String()
	fmt.Printf(`
errmon example: serving on %[1]s, storing errors in %[2]s
  curl %[1]s/panic                 a panic (index out of range)
  curl %[1]s/nil                   a panic (assignment to a nil map)
  curl %[1]s/fail                  c.Error + 500
  curl %[1]s/record                errmon Record by hand, answers 200
  curl %[1]s/order                 a failing query, logged as an error: its breadcrumbs are on the page
  curl -H 'Content-Type: application/json' -d '{"user":"ann","password":"hunter2"}' %[1]s/login
                                   a panic (POST of JSON); the password is masked
  curl %[1]s/logged                an error the handler only logs (slog), answers 200
  curl %[1]s/query                 a failing SQL query, c.Error + 500
  curl %[1]s/ok                    no error
(a background job also fails once at start: see the dashboard)
Dashboard: %[1]s%[3]s/   (loopback only)
Ctrl-C to stop.

`, base, dbPath, m.Config().URLPrefix)

	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Print("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return m.Close() // store what is pending before the process ends
}

// nightlyReport is a background job that fails: its panic is recorded
// with the kind "goroutine" instead of ending the process.
func nightlyReport(logger *slog.Logger) {
	logger.Info("nightly report: starting")
	var totals map[string]int
	totals["orders"]++ // assignment to entry in nil map
}

func routes(r *gin.Engine, m *errmon.Monitor, db *gorm.DB, logger *slog.Logger) {
	r.GET("/", func(c *gin.Context) {
		var b strings.Builder
		b.WriteString("errmon example. Routes:\n")
		for _, rt := range r.Routes() {
			fmt.Fprintf(&b, "  %-6s %s\n", rt.Method, rt.Path)
		}
		fmt.Fprintf(&b, "\nDashboard: %s/\n", m.Config().URLPrefix)
		c.String(http.StatusOK, b.String())
	})
	r.GET("/panic", func(c *gin.Context) {
		i, _ := strconv.Atoi(c.DefaultQuery("i", "5"))
		items := []string{"a", "b", "c"}
		c.String(http.StatusOK, items[i]) // index out of range: ?i=7 is the same bug
	})
	r.GET("/nil", func(c *gin.Context) {
		var hits map[string]int
		hits[c.ClientIP()]++ // assignment to entry in nil map
		c.Status(http.StatusOK)
	})
	r.GET("/fail", func(c *gin.Context) {
		// errmon.Error is c.Error that also keeps where it was called.
		_ = errmon.Error(c, fmt.Errorf("reserve item 42: %w", errOutOfStock))
		c.AbortWithStatus(http.StatusInternalServerError)
	})
	r.GET("/record", func(c *gin.Context) {
		m.Record(c, errors.New("cache refresh failed; serving stale data"))
		c.String(http.StatusOK, "recorded an error by hand; the request still succeeds\n")
	})
	r.GET("/order", func(c *gin.Context) {
		logger.InfoContext(c, "loading order", "id", 42, "password", "hunter2") // a breadcrumb, masked
		var n int64
		// No such table: a failing query, kept as a SQL breadcrumb (its
		// values never: "id = ?").
		if err := db.WithContext(c).Raw("SELECT count(*) FROM orders WHERE id = ?", 42).Scan(&n).Error; err != nil {
			logger.ErrorContext(c, "order lookup failed", "err", err) // recorded, with the breadcrumbs before it
			_ = c.Error(err)
			c.AbortWithStatus(http.StatusInternalServerError)
			return
		}
		c.String(http.StatusOK, "%d orders\n", n)
	})
	r.POST("/login", func(c *gin.Context) {
		var req struct {
			User     string `json:"user"`
			Password string `json:"password"`
		}
		if err := c.ShouldBindJSON(&req); err != nil {
			c.String(http.StatusBadRequest, "want JSON: {\"user\":...,\"password\":...}\n")
			return
		}
		panic("login backend unavailable for user " + req.User)
	})
	r.GET("/logged", func(c *gin.Context) {
		err := fmt.Errorf("send receipt for order 42: %w", errors.New("smtp: connection refused"))
		logger.ErrorContext(c, "receipt not sent", "order", 42, "err", err)
		c.String(http.StatusOK, "logged an error with slog; the request still succeeds\n")
	})
	r.GET("/query", func(c *gin.Context) {
		var n int64
		if err := db.WithContext(c).Table("invoices").Where("paid = ?", false).Count(&n).Error; err != nil {
			_ = c.Error(fmt.Errorf("count unpaid invoices: %w", err)) // no such table
			c.AbortWithStatus(http.StatusInternalServerError)
			return
		}
		c.String(http.StatusOK, "%d unpaid\n", n)
	})
	r.GET("/ok", func(c *gin.Context) { c.String(http.StatusOK, "ok\n") })
}
