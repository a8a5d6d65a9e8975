package errmon

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/errmon/errmon/internal/text"
)

// Frame is one call in a traceback.
type Frame struct {
	Function string // package-qualified, as the runtime names it
	File     string
	Line     int
	// InApp reports whether the frame is the application's code rather than
	// the Go runtime, the standard library, gin or errmon itself.
	InApp bool
}

const (
	maxFrames       = 64 // frames kept in a traceback
	maxHashedFrames = 24 // in-app frames that make a fingerprint
)

// panicFrames returns the stack of the panic being recovered, newest first,
// starting at the function that panicked. It must be called from the
// deferred function that recovers: the panicking frames are still on the
// stack there.
func panicFrames() []Frame {
	var pcs [128]uintptr
	n := runtime.Callers(2, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	var out []Frame
	seenPanic := false
	for {
		f, more := frames.Next()
		if !seenPanic {
			if f.Function == "runtime.gopanic" {
				seenPanic = true
			}
		} else if len(out) > 0 || !strings.HasPrefix(f.Function, "runtime.") {
			out = append(out, makeFrame(f))
			if len(out) == maxFrames {
				break
			}
		}
		if !more {
			break
		}
	}
	if !seenPanic { // not in a panic: fall back to the caller's stack
		return callerFrames(3)
	}
	return out
}

// callerFrames returns the stack of the caller, skipping skip frames
// (0 is callerFrames itself).
func callerFrames(skip int) []Frame {
	var pcs [maxFrames]uintptr
	n := runtime.Callers(skip+1, pcs[:])
	return pcsToFrames(pcs[:n])
}

func pcsToFrames(pcs []uintptr) []Frame {
	if len(pcs) == 0 {
		return nil
	}
	frames := runtime.CallersFrames(pcs)
	out := make([]Frame, 0, min(len(pcs), maxFrames))
	for {
		f, more := frames.Next()
		if f.Function != "" || f.File != "" {
			out = append(out, makeFrame(f))
		}
		if !more || len(out) == maxFrames {
			break
		}
	}
	return out
}

func makeFrame(f runtime.Frame) Frame {
	return Frame{Function: f.Function, File: f.File, Line: f.Line, InApp: inApp(f.Function, f.File)}
}

// The build's modules: the main module's path and its dependencies'. Frames
// of a dependency are library frames, as the standard library's are.
var mainModulePath, depModules = func() (string, []string) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "", nil
	}
	deps := make([]string, 0, len(bi.Deps))
	for _, d := range bi.Deps {
		deps = append(deps, d.Path)
	}
	main := bi.Main.Path
	if main == "command-line-arguments" {
		main = ""
	}
	return main, deps
}()

var mainModuleRoot, _, _ = strings.Cut(mainModulePath, "/")

const selfPkg = "github.com/errmon/errmon"

// inApp tells application frames from library frames: the runtime's, the
// standard library's, those of the modules the build depends on (gin's
// among them) and errmon's own (errmon's tests count as an application).
func inApp(function, file string) bool {
	if function == "" {
		return false
	}
	pkg := funcPackage(function)
	switch {
	case pkg == "main":
		return true
	case strings.HasPrefix(pkg, "github.com/gin-gonic/"):
		return false
	case pkg == selfPkg || strings.HasPrefix(pkg, selfPkg+"/"):
		return strings.HasSuffix(file, "_test.go") // errmon's packages; their tests are an application
	case inModule(pkg, mainModulePath):
		return true
	}
	for _, d := range depModules {
		if inModule(pkg, d) {
			return false
		}
	}
	if strings.Contains(file, "/pkg/mod/") || strings.Contains(file, "@v") {
		// a file of the module cache (module@version), also under
		// -trimpath: a dependency, when the build info lists none (tests).
		return false
	}
	root, _, _ := strings.Cut(pkg, "/")
	if !strings.Contains(root, ".") && root != mainModuleRoot {
		return false // the standard library
	}
	return true
}

// inModule reports whether the package path pkg belongs to module mod.
func inModule(pkg, mod string) bool {
	return mod != "" && (pkg == mod || strings.HasPrefix(pkg, mod+"/"))
}

// funcPackage returns the import path of a function name such as
// "github.com/a/b.(*T).M.func1".
func funcPackage(function string) string {
	slash := strings.LastIndexByte(function, '/')
	dot := strings.IndexByte(function[slash+1:], '.')
	if dot < 0 {
		return function
	}
	return function[:slash+1+dot]
}

// stackTracer is the interface of github.com/pkg/errors and
// github.com/cockroachdb/errors, found by reflection so that errmon does not
// import them: a StackTrace method returning a slice of program counters.
//
// errorFrames returns the innermost such stack of err's chain: the one
// taken where the error was born, not where it was wrapped on the way up.
func errorFrames(err error) []Frame {
	var found []uintptr
	for e, depth := err, 0; e != nil && depth < 100; depth++ {
		if pcs := stackOf(e); len(pcs) > 0 {
			found = pcs
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			break
		}
		e = u.Unwrap()
	}
	return pcsToFrames(found)
}

func stackOf(e error) []uintptr {
	if c, ok := e.(interface{ Callers() []uintptr }); ok {
		return c.Callers()
	}
	m := reflect.ValueOf(e).MethodByName("StackTrace")
	if !m.IsValid() {
		return nil
	}
	t := m.Type()
	if t.NumIn() != 0 || t.NumOut() != 1 || t.Out(0).Kind() != reflect.Slice || t.Out(0).Elem().Kind() != reflect.Uintptr {
		return nil
	}
	out := m.Call(nil)[0]
	pcs := make([]uintptr, out.Len())
	for i := range pcs {
		pcs[i] = uintptr(out.Index(i).Uint())
	}
	return pcs
}

// formatTraceback renders frames newest first, as Go prints stacks.
func formatTraceback(frames []Frame) string {
	var b strings.Builder
	for _, f := range frames {
		b.WriteString(f.Function)
		b.WriteString("\n\t")
		b.WriteString(f.File)
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(f.Line))
		b.WriteByte('\n')
	}
	return b.String()
}

// exceptionName returns the Go type of a panic value or error. For errors
// wrapped by fmt.Errorf or github.com/pkg/errors it names the cause.
func exceptionName(v any) string {
	if named, ok := v.(interface{ exceptionName() string }); ok {
		return named.exceptionName() // errmon's own values (a log record)
	}
	err, ok := v.(error)
	for ok {
		if !wrapperTypes[qualifiedType(err)] {
			return fmt.Sprintf("%T", err)
		}
		next := errors.Unwrap(err)
		if next == nil {
			if j, isJoin := err.(interface{ Unwrap() []error }); isJoin && len(j.Unwrap()) > 0 {
				next = j.Unwrap()[0]
			}
		}
		if next == nil {
			return fmt.Sprintf("%T", err)
		}
		err = next
	}
	if v == nil {
		return "nil"
	}
	return fmt.Sprintf("%T", v)
}

// wrapperTypes are the error types that only add context or a stack to
// their cause, by import path and name: exceptionName looks through them.
var wrapperTypes = map[string]bool{
	"fmt.wrapError":                                     true,
	"fmt.wrapErrors":                                    true,
	"errors.joinError":                                  true,
	"github.com/pkg/errors.withStack":                   true,
	"github.com/pkg/errors.withMessage":                 true,
	"github.com/cockroachdb/errors/withstack.withStack": true,
	"github.com/cockroachdb/errors/errutil.withPrefix":  true,
}

// qualifiedType returns "import/path.Name" of the (pointed-to) type of v.
func qualifiedType(v any) string {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return ""
	}
	return t.PkgPath() + "." + t.Name()
}

// messageOf renders a panic value or error as text. fmt recovers from
// panicking Error and String methods; this recovers from the rest.
func messageOf(v any) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprintf("%T (its message could not be rendered)", v)
		}
	}()
	return fmt.Sprint(v)
}

// fingerprint returns the sha256 hex that identifies the bug behind o: the
// exception type, the normalized message and, when the occurrence has a
// stack, the functions of its in-app frames (never line numbers); without a
// stack, its method and route.
func fingerprint(o *Occurrence, custom func(*Occurrence) string) string {
	h := sha256.New()
	if custom != nil {
		if key := safeCustomFingerprint(custom, o); key != "" {
			h.Write([]byte("custom\x00"))
			h.Write([]byte(key))
			return hex.EncodeToString(h.Sum(nil))
		}
	}
	write := func(s string) { h.Write([]byte(s)); h.Write([]byte{0}) }
	write("v1")
	write(o.ExceptionName)
	write(normalizeCache.Get(o.Message, NormalizeMessage))
	if len(o.Frames) == 0 {
		write(o.Method)
		write(o.Route)
		return hex.EncodeToString(h.Sum(nil))
	}
	n := 0
	for _, f := range o.Frames {
		if f.InApp {
			write(f.Function)
			if n++; n == maxHashedFrames {
				break
			}
		}
	}
	if n == 0 { // no application frame: the whole stack it is
		for i, f := range o.Frames {
			if i == maxHashedFrames {
				break
			}
			write(f.Function)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func safeCustomFingerprint(custom func(*Occurrence) string, o *Occurrence) (key string) {
	defer func() {
		if recover() != nil {
			key = ""
		}
	}()
	return custom(o)
}

// normalizeCache serves NormalizeMessage in fingerprints; a pure function
// of its input, so one cache serves every monitor.
// NormalizeMessage replaces the parts of a message that vary between
// occurrences of one bug (UUIDs, dates, hex values and addresses, numbers)
// with placeholders, so that they do not split its group. It reads the
// first 1,024 bytes of msg.
func NormalizeMessage(msg string) string { return text.Normalize(msg) }

var normalizeCache text.Cache
