package errmon_test

import (
	"github.com/errmon/errmon"
	"github.com/gin-gonic/gin"
)

// Name each request's user once it is authenticated: the errors it records
// then count their users affected.
func ExampleSetUser() {
	r := gin.New()
	r.Use(func(c *gin.Context) {
		if id := c.GetHeader("X-User-Id"); id != "" { // your authentication
			errmon.SetUser(c, id)
		}
		c.Next()
	})
	_ = r
}
