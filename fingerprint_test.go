package errmon

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/errmon/errmon/internal/text"
)

func TestNormalizeMessageGroups(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b string
	}{
		{"index", "runtime error: index out of range [5] with length 3", "runtime error: index out of range [7] with length 3"},
		{"numbers", "user 42 not found after 3 tries", "user 1337 not found after 10 tries"},
		{"hex address", "bad pointer 0xc000123 in object", "bad pointer 0xc0004fa8e0 in object"},
		{"uuid", "order 3f2504e0-4f89-11d3-9a0c-0305e82c3301 missing", "order 6BA7B810-9DAD-11D1-80B4-00C04FD430C8 missing"},
		{"goroutine id", "goroutine 17 [running]: deadlock", "goroutine 4242 [running]: deadlock"},
		{"date", "report for 2024-01-31 failed", "report for 2025-12-02 failed"},
		{"timestamp", "at 2024-01-31T10:11:12.123Z timeout", "at 2026-11-25 14:39:04+01:00 timeout"},
		{"object id", "document 507f1f77bcf86cd799439011 locked", "document 5f8d0d55b54764421b7156c9 locked"},
		{"ip:port", "dial tcp 10.0.0.1:5432: connection refused", "dial tcp 10.0.0.2:6543: connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			na, nb := NormalizeMessage(tc.a), NormalizeMessage(tc.b)
			if na != nb {
				t.Errorf("%q -> %q\n%q -> %q\nwant equal", tc.a, na, tc.b, nb)
			}
		})
	}
	for _, long := range []string{strings.Repeat("日本", 400), "a" + strings.Repeat("€", 600)} {
		if got := NormalizeMessage(long); !utf8.ValidString(got) || len(got) > text.MaxNormalized {
			t.Errorf("NormalizeMessage of %d bytes: %d bytes, valid UTF-8 %v", len(long), len(got), utf8.ValidString(got))
		}
	}
	for _, tc := range []struct{ a, b string }{
		{"user not found", "order not found"},
		{"index out of range", "slice bounds out of range"},
		{"deadbeef", "cafebabe"}, // words made of hex letters only are words
	} {
		if NormalizeMessage(tc.a) == NormalizeMessage(tc.b) {
			t.Errorf("%q and %q normalize alike: %q", tc.a, tc.b, NormalizeMessage(tc.a))
		}
	}
}

// synthetic returns an occurrence with a stack made of the given functions.
func synthetic(exc, msg string, frames ...Frame) *Occurrence {
	return &Occurrence{ExceptionName: exc, Message: msg, Frames: frames, Method: "GET", Route: "/r"}
}

func TestFingerprintDirect(t *testing.T) {
	app := func(fn string, line int) Frame {
		return Frame{Function: "example.com/app/handlers." + fn, File: "/src/app/handlers/h.go", Line: line, InApp: true}
	}
	lib := func(fn string, line int) Frame {
		return Frame{Function: "github.com/gin-gonic/gin." + fn, File: "/mod/gin/context.go", Line: line}
	}
	base := synthetic("runtime.boundsError", "index out of range [5] with length 3",
		app("getUser", 40), app("serve", 12), lib("(*Context).Next", 192))
	same := []struct {
		name string
		o    *Occurrence
	}{
		{"line shifts in every frame", synthetic("runtime.boundsError", "index out of range [5] with length 3",
			app("getUser", 47), app("serve", 19), lib("(*Context).Next", 200))},
		{"other index", synthetic("runtime.boundsError", "index out of range [7] with length 3",
			app("getUser", 40), app("serve", 12), lib("(*Context).Next", 192))},
		{"library frames differ", synthetic("runtime.boundsError", "index out of range [5] with length 3",
			app("getUser", 40), app("serve", 12), lib("(*Engine).handleHTTPRequest", 600))},
		{"other method and route (the stack decides)", &Occurrence{ExceptionName: "runtime.boundsError",
			Message: "index out of range [5] with length 3", Method: "POST", Route: "/other",
			Frames: []Frame{app("getUser", 40), app("serve", 12), lib("(*Context).Next", 192)}}},
	}
	for _, tc := range same {
		if fingerprint(tc.o, nil) != fingerprint(base, nil) {
			t.Errorf("%s: fingerprint differs", tc.name)
		}
	}
	different := []struct {
		name string
		o    *Occurrence
	}{
		{"other function, same message", synthetic("runtime.boundsError", "index out of range [5] with length 3",
			app("getOrder", 40), app("serve", 12), lib("(*Context).Next", 192))},
		{"other caller", synthetic("runtime.boundsError", "index out of range [5] with length 3",
			app("getUser", 40), app("serveAdmin", 12), lib("(*Context).Next", 192))},
		{"other type", synthetic("runtime.plainError", "index out of range [5] with length 3",
			app("getUser", 40), app("serve", 12), lib("(*Context).Next", 192))},
		{"other message", synthetic("runtime.boundsError", "slice bounds out of range [5:3]",
			app("getUser", 40), app("serve", 12), lib("(*Context).Next", 192))},
		{"no stack", synthetic("runtime.boundsError", "index out of range [5] with length 3")},
	}
	for _, tc := range different {
		if fingerprint(tc.o, nil) == fingerprint(base, nil) {
			t.Errorf("%s: fingerprint equal, want different", tc.name)
		}
	}

	// Without a stack: type, normalized message, method and route.
	noStack := func(exc, msg, method, route string) string {
		return fingerprint(&Occurrence{ExceptionName: exc, Message: msg, Method: method, Route: route}, nil)
	}
	ref := noStack("*errors.errorString", "user 42 not found", "GET", "/users/:id")
	if noStack("*errors.errorString", "user 43 not found", "GET", "/users/:id") != ref {
		t.Error("no stack: numbers split the group")
	}
	for name, h := range map[string]string{
		"type":    noStack("*fs.PathError", "user 42 not found", "GET", "/users/:id"),
		"message": noStack("*errors.errorString", "user 42 gone", "GET", "/users/:id"),
		"method":  noStack("*errors.errorString", "user 42 not found", "POST", "/users/:id"),
		"route":   noStack("*errors.errorString", "user 42 not found", "GET", "/orders/:id"),
	} {
		if h == ref {
			t.Errorf("no stack: another %s gives the same fingerprint", name)
		}
	}
	if len(ref) != 64 {
		t.Errorf("fingerprint %q is not sha256 hex", ref)
	}
}

func TestFingerprintCustomHook(t *testing.T) {
	o1 := synthetic("a", "one")
	o2 := synthetic("b", "two")
	byExc := func(o *Occurrence) string { return "same-key" }
	if fingerprint(o1, byExc) != fingerprint(o2, byExc) {
		t.Error("custom key: different fingerprints")
	}
	keep := func(o *Occurrence) string { return "" }
	if fingerprint(o1, keep) != fingerprint(o1, nil) {
		t.Error(`custom "" does not keep the default`)
	}
	panicky := func(o *Occurrence) string { panic("hook bug") }
	if fingerprint(o1, panicky) != fingerprint(o1, nil) {
		t.Error("a panicking hook does not fall back to the default")
	}

	// Through a monitor (the hook decides the groups, before the hash is
	// set): internal/tests' TestFingerprintCustomHook.
}

type myErr struct{ code int }

func (e *myErr) Error() string { return "my error " + strconv.Itoa(e.code) }

type stringer struct{}

func (stringer) String() string { return "a stringer" }

// TestExceptionName: the type of the error, fmt's and errors.Join's
// wrappers looked through. The values made by github.com/pkg/errors are
// internal/tests' TestExceptionName (errmon's module does not require it).
func TestExceptionName(t *testing.T) {
	var idx error
	func() {
		defer func() { idx = recover().(error) }()
		panicIndex(9)
	}()
	for _, tc := range []struct {
		name string
		v    any
		want string
	}{
		{"bounds", idx, "runtime.boundsError"},
		{"errors.New", errors.New("x"), "*errors.errorString"},
		{"fmt.Errorf without %w", fmt.Errorf("x %d", 1), "*errors.errorString"},
		{"fmt.Errorf %w", fmt.Errorf("ctx: %w", &myErr{1}), "*errmon.myErr"},
		{"fmt.Errorf %w twice", fmt.Errorf("a: %w", fmt.Errorf("b: %w", fs.ErrNotExist)), "*errors.errorString"},
		{"fmt.Errorf two %w", fmt.Errorf("a: %w %w", &myErr{1}, fs.ErrNotExist), "*errmon.myErr"},
		{"errors.Join", errors.Join(&myErr{2}, fs.ErrClosed), "*errmon.myErr"},
		{"string", "boom", "string"},
		{"int", 42, "int"},
		{"stringer", stringer{}, "errmon.stringer"},
		{"nil", nil, "nil"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := exceptionName(tc.v); got != tc.want {
				t.Errorf("exceptionName = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestMessageOfPanickingStringer(t *testing.T) {
	msg := messageOf(badStringer{})
	if !strings.Contains(msg, "stringer bug") {
		t.Errorf("messageOf(badStringer) = %q", msg)
	}
}

type badStringer struct{}

func (badStringer) String() string { panic("stringer bug") }

func TestInApp(t *testing.T) {
	for _, tc := range []struct {
		function, file string
		want           bool
	}{
		{"main.handler", "/src/app/main.go", true},
		{"main.main.func1", "/src/app/main.go", true},
		{"runtime.gopanic", "/go/src/runtime/panic.go", false},
		{"net/http.(*conn).serve", "/go/src/net/http/server.go", false},
		{"github.com/gin-gonic/gin.(*Context).Next", "/mod/gin/context.go", false},
		{"gorm.io/gorm.(*DB).Create", "/root/go/pkg/mod/gorm.io/gorm@v1.31.2/finisher_api.go", false},
		{"github.com/pkg/errors.New", "github.com/pkg/errors@v0.9.1/errors.go", false}, // -trimpath
		{"example.com/lib.F", "/home/u/go/pkg/mod/example.com/lib@v1.0.0/f.go", false},
		{"github.com/errmon/errmon.(*Monitor).record", "/src/errmon/plugin.go", false},
		{"github.com/errmon/errmon.panicIndex", "/src/errmon/recovery_test.go", true},
		{"example.com/app/handlers.(*API).Get", "/src/app/handlers/api.go", true},
		{"", "", false},
	} {
		if got := inApp(tc.function, tc.file); got != tc.want {
			t.Errorf("inApp(%q) = %v, want %v", tc.function, got, tc.want)
		}
	}
}
