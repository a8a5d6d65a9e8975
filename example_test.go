package errmon_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/errmon/errmon"
	"github.com/gin-gonic/gin"
)

// The examples that store errors need a database: they are in
// internal/tests/example_test.go, a module of its own with the drivers.

func ExampleConfig_Validate() {
	cfg := errmon.DefaultConfig()
	cfg.URLPrefix = "errors" // no leading slash
	cfg.ListSize = 5000      // more than a page can hold
	// Validate needs no database (a nil Config.DB is New's to refuse) and
	// reports every fault, each a *ConfigError naming its key.
	err := cfg.Validate()
	fmt.Println(err)
	var ce *errmon.ConfigError
	if errors.As(err, &ce) {
		fmt.Println("first key:", ce.Key)
	}
	fmt.Println(errmon.DefaultConfig().Validate())
	// Output:
	// errmon: invalid config: APP_ERROR_URL_PREFIX: "errors" must start with "/"
	// errmon: invalid config: APP_DEFAULT_LIST_SIZE: 5000 must be between 1 and 1000
	// first key: APP_ERROR_URL_PREFIX
	// <nil>
}

func ExampleNormalizeMessage() {
	// Messages that differ only by numbers, ids, addresses or times group
	// together.
	fmt.Println(errmon.NormalizeMessage("user 42 not found after 3 tries"))
	fmt.Println(errmon.NormalizeMessage("user 1337 not found after 10 tries"))
	fmt.Println(errmon.NormalizeMessage("order 3f2504e0-4f89-11d3-9a0c-0305e82c3301 missing"))
	fmt.Println(errmon.NormalizeMessage("dial tcp 10.0.0.1:5432: connection refused"))
	// Output:
	// user <n> not found after <n> tries
	// user <n> not found after <n> tries
	// order <uuid> missing
	// dial tcp <n>.<n>.<n>.<n>:<n>: connection refused
}

func ExampleLocalOnly() {
	gin.SetMode(gin.ReleaseMode)
	// errmon.LocalOnly is a Config.ViewPermission (the default in gin's
	// debug and test modes); any handler may ask it too.
	r := gin.New()
	r.GET("/debug/vars", func(c *gin.Context) {
		if !errmon.LocalOnly(c) {
			c.AbortWithStatus(http.StatusForbidden)
			return
		}
		c.String(http.StatusOK, "counters")
	})
	for _, tc := range []struct {
		what, remote, host, forwarded string
	}{
		{"from this machine", "127.0.0.1:50000", "localhost:8080", ""},
		{"from this machine over IPv6", "[::1]:50000", "[::1]:8080", ""},
		{"from another machine", "203.0.113.7:50000", "localhost:8080", ""},
		{"another site's name (DNS rebinding)", "127.0.0.1:50000", "evil.example:8080", ""},
		{"through a proxy", "127.0.0.1:50000", "localhost:8080", "198.51.100.4"},
	} {
		req := httptest.NewRequest(http.MethodGet, "/debug/vars", nil)
		req.RemoteAddr, req.Host = tc.remote, tc.host
		if tc.forwarded != "" {
			req.Header.Set("X-Forwarded-For", tc.forwarded)
		}
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		fmt.Println(w.Code, tc.what)
	}
	// Output:
	// 200 from this machine
	// 200 from this machine over IPv6
	// 403 from another machine
	// 403 another site's name (DNS rebinding)
	// 403 through a proxy
}

func ExampleError() {
	gin.SetMode(gin.ReleaseMode)
	errNoStock := errors.New("out of stock")
	r := gin.New()
	// r.Use(errmon.Middleware(cfg)) records the error with the stack of the
	// errmon.Error call, its culprit the handler below; what follows sees
	// c.Errors as c.Error leaves them.
	r.Use(func(c *gin.Context) {
		c.Next()
		last := c.Errors.Last()
		fmt.Println(len(c.Errors), last.Err == errNoStock, last.IsType(gin.ErrorTypePublic), last.Meta)
	})
	r.POST("/orders", func(c *gin.Context) {
		// In place of c.Error(errNoStock): the same *gin.Error comes back.
		errmon.Error(c, errNoStock).SetType(gin.ErrorTypePublic).SetMeta("sku 42")
		c.JSON(http.StatusServiceUnavailable, gin.H{"errors": c.Errors.Errors()})
	})
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/orders", nil))
	fmt.Println(w.Code, w.Body.String())
	// Output:
	// 1 true true sku 42
	// 503 {"errors":["out of stock"]}
}
