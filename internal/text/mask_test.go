package text

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestMaskerUnits(t *testing.T) {
	m := NewMasker([]string{"password", "secret"}, "***", true)
	for _, tc := range []struct{ in, want string }{
		{"password=abc&x=1", "password=***&x=1"},
		{`{"password": "abc", "x": 1}`, `{"password": "***", "x": 1}`},
		{`client_secret: 'abc'`, `client_secret: '***'`},
		{"postgres://u:pw@h/db", "postgres://u:***@h/db"},
		{"nothing here", "nothing here"},
		{`{"passwords": ["a1", {"b": "a2]"}], "x": 1}`, `{"passwords": ***, "x": 1}`},
		{`{"secret": {"old": "a3", "new": [1, 2]}, "y": "z"}`, `{"secret": ***, "y": "z"}`},
		{`{"secret": [1, {"cut short`, `{"secret": ***`},
		{`password= password='a4' tail`, `password= password='***' tail`},
		{`secret: password='a5'`, `secret: password='***'`},
		{`a=1&password=a6&secret=&b=2`, `a=1&password=***&secret=***&b=2`},
	} {
		if got := m.Text(tc.in); got != tc.want {
			t.Errorf("text(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, h := range []string{"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "X-Api-Key", "X-Auth-Token", "X-CSRF-Token", "X-Session-Id"} {
		if !m.SecretHeader(h) {
			t.Errorf("header %s not secret", h)
		}
	}
	for _, h := range []string{"Accept", "User-Agent", "X-Request-Id"} {
		if m.SecretHeader(h) {
			t.Errorf("header %s secret", h)
		}
	}
	if got := CookieNames("a=1; b=2;c", "*"); got != "a=*; b=*; c=*" {
		t.Errorf("cookieNames = %q", got)
	}
}

// withCheckDigit completes digits with the digit that makes them pass (or,
// with fail, fail) the Luhn check.
func withCheckDigit(digits string, fail bool) string {
	for c := '0'; c <= '9'; c++ {
		s := digits + string(c)
		d := []byte(strings.ReplaceAll(strings.ReplaceAll(s, " ", ""), "-", ""))
		for i := range d {
			d[i] -= '0'
		}
		if luhn(d) != fail {
			return s
		}
	}
	panic("unreachable")
}

// TestMaskTextShapes: key=value pairs in every notation, built-in key
// fragments, URL and DSN passwords and secret-shaped values are hidden by
// masker.text; ordinary text stays as it is.
func TestMaskTextShapes(t *testing.T) {
	const jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
	visa, amex, mc19 := "4111111111111111", "378282246310005", withCheckDigit("622126000000000000", false)
	m := NewMasker(testKeys, "***", true)
	cases := []struct{ name, in, want string }{
		// pairs
		{"key=value", "a=1&password=v1&b=2", "a=1&password=***&b=2"},
		{"key: value", "password: v1 next", "password: *** next"},
		{"JSON", `{"password":"v1","b":2}`, `{"password":"***","b":2}`},
		{"single quotes", `{'password': 'v1'}`, `{'password': '***'}`},
		{"escaped quotes", `{"password":"a\"b\\","x":1}`, `{"password":"***","x":1}`},
		{"quoted cut short", `{"password": "v1 cut`, `{"password": "***"`},
		{"single quoted cut short", `password='v1 cut`, `password='***'`},
		{"bracketed", `{"passwords": ["a", {"b": 1}], "x": 1}`, `{"passwords": ***, "x": 1}`},
		{"bracketed cut short", `{"secret": {"a": [1, 2`, `{"secret": ***`},
		{"empty value", "password=&x=1", "password=***&x=1"},
		{"value is a key", "password=secret=x y", "password=*** y"},
		{"value holds a key", "password=MyAuth:x1 y", "password=*** y"},
		{"spaced pairs", "password= secret=x y", "password= secret=*** y"},
		{"bearer after a key", "Authorization: Bearer abc", "Authorization: Bearer ***"},
		{"basic after a key", `"authorization": "Basic dXNlcjpwYXNz"`, `"authorization": "***"`},
		{"key with brackets", "user[password]=v1&x=1", "user[password]=***&x=1"},
		{"JSON in a JSON string", `body: "{\"password\":\"v1\",\"a\":1}"`, `body: "{\"password\":\"***\",\"a\":1}"`},
		{"escaped quote cut short", `"{\"password\":\"v1`, `"{\"password\":\"***\"`},
		{"ruby hash", `{"password" => "v1"}`, `{"password" => "***"}`},
		{"go assignment", `password := "v1"`, `password := "***"`},
		{"upper case", "PASSWORD=v1", "PASSWORD=***"},
		// URL userinfo and DSNs
		{"url", "postgres://bob:v1@db/x", "postgres://bob:***@db/x"},
		{"url, @ in the password", "amqp://guest:a@b@rabbit/", "amqp://guest:***@rabbit/"},
		{"url, no password", "https://bob@example.com:8443/x", "https://bob@example.com:8443/x"},
		{"url, port", "http://localhost:8080/a@b", "http://localhost:8080/a@b"},
		{"mysql dsn", "dial root:v1@tcp(127.0.0.1:3306)/app?parseTime=true", "dial root:***@tcp(127.0.0.1:3306)/app?parseTime=true"},
		{"mysql dsn, @ in the password", "user:p@ss@tcp(db)/app", "user:***@tcp(db)/app"},
		{"mysql dsn, unix socket", `"dsn":"app:v1@unix(/tmp/mysql.sock)/db"`, `"dsn":"app:***@unix(/tmp/mysql.sock)/db"`},
		{"mysql dsn, default address", "user:v1@/dbname", "user:***@/dbname"},
		{"mysql dsn, a card in the password", "u:ab-4111111111111111@tcp(h)/db", "u:***@tcp(h)/db"},
		{"email", "mail bob@example.com at 12:30 sent", "mail bob@example.com at 12:30 sent"},
		// cards
		{"card", "charge " + visa + " declined", "charge *** declined"},
		{"card in spaced groups", "card 4111 1111 1111 1111 declined", "card *** declined"},
		{"card in dashed groups", "card 4111-1111-1111-1111.", "card ***."},
		{"amex groups", "amex 3782 822463 10005", "amex ***"},
		{"amex", "amex " + amex, "amex ***"},
		{"19 digits", "pan=" + mc19, "pan=***"},
		{"13 digits", "old visa 4222222222222", "old visa ***"},
		{"card in JSON", `{"n":"` + visa + `"}`, `{"n":"***"}`},
		{"not Luhn", "order " + withCheckDigit("411111111111111", true), "order " + withCheckDigit("411111111111111", true)},
		{"too short", "id " + withCheckDigit("41111111111", false), "id " + withCheckDigit("41111111111", false)},
		{"too long", "id " + withCheckDigit("4111111111111111111", false), "id " + withCheckDigit("4111111111111111111", false)},
		{"ms timestamp", "at " + withCheckDigit("173297394512", false), "at " + withCheckDigit("173297394512", false)},
		{"ns timestamp", "at " + withCheckDigit("173297394512345678", false), "at " + withCheckDigit("173297394512345678", false)},
		{"in a word", "ref" + visa, "ref" + visa},
		{"followed by letters", visa + "x", visa + "x"},
		{"phone", "call +86 138 0013 8000 or +1 415-555-0132", "call +86 138 0013 8000 or +1 415-555-0132"},
		{"groups after a number", "qty 12 " + visa, "qty 12 " + visa},
		{"fraction", "took 0." + visa + "s", "took 0." + visa + "s"},
		// JWTs and credentials
		{"jwt", "invalid token " + jwt + ": expired", "invalid token ***: expired"},
		{"unsecured jwt", "t=eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0. ok", "t=*** ok"},
		{"jwt before =", jwt + "=1", "***=1"},
		{"jwt as a secret key", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.pwd=x1", "***=***"},
		{"not a jwt", "eyJhbGciOiJIUzI1NiJ9 and eyJa..b and heyJude.a.b", "eyJhbGciOiJIUzI1NiJ9 and eyJa..b and heyJude.a.b"},
		{"bearer", "sent Bearer mF_9.B5f-4.1JqM to the api", "sent Bearer *** to the api"},
		{"bearer word", "the bearer of bad news: bearer authentication failed", "the bearer of bad news: bearer authentication failed"},
		{"basic", "header Basic dXNlcjpwYXNz rejected", "header Basic *** rejected"},
		{"basic word", "Basic information, Basic usage, basic abcd", "Basic information, Basic usage, basic abcd"},
		// ordinary text
		{"uuid", "user 4f1c2a9e-8b7d-4c3e-9a1f-0e2d3c4b5a69 not found", "user 4f1c2a9e-8b7d-4c3e-9a1f-0e2d3c4b5a69 not found"},
		{"uuid of digits", "id 12345678-1234-1234-1234-123456789012", "id 12345678-1234-1234-1234-123456789012"},
		{"amounts and dates", "amount=1,234.56 EUR at 2026-11-25 14:39:05 page=2 id=18342", "amount=1,234.56 EUR at 2026-11-25 14:39:05 page=2 id=18342"},
		{"ordinary keys", "user=alice name=Bob email=a@b.c route=/x author=me design=flat signal=9 x-forwarded-for=1.2.3.4",
			"user=alice name=Bob email=a@b.c route=/x author=me design=flat signal=9 x-forwarded-for=1.2.3.4"},
	}
	// every built-in fragment in a key, '-' and '_' alike
	for _, k := range []string{
		"token", "access_token", "refresh-token", "X-CSRF-Token", "api_key", "api-key", "apikey", "X-Api-Key",
		"access_key", "X-Access-Key", "auth", "x-auth", "oauth_verifier", "authorization", "authorise", "authentication",
		"credential", "credentials", "passwd", "pwd", "mysql_pwd", "session", "sessionid", "PHPSESSID", "csrf", "csrftoken",
		"xsrf", "_xsrf", "jwt", "X-JWT", "private_key", "privatekey", "private-key", "cookie", "set_cookie", "cvv", "card_cvc",
		"secret", "client-secret", "password", "new_password", "passphrase", "signature", "x-hub-signature", "bearer",
	} {
		cases = append(cases, struct{ name, in, want string }{"key " + k, k + "=v4lue-1&n=2", k + "=***&n=2"},
			struct{ name, in, want string }{"json key " + k, `{"` + k + `": "v4lue-1"}`, `{"` + k + `": "***"}`})
	}
	for _, tc := range cases {
		if got := m.Text(tc.in); got != tc.want {
			t.Errorf("%s: text(%q)\n = %q\nwant %q", tc.name, tc.in, got, tc.want)
		}
	}
}

// TestMaskKeyNames: the names that are secret, with the built-in list on
// and off.
func TestMaskKeyNames(t *testing.T) {
	on := NewMasker(testKeys, "***", true)
	off := NewMasker(testKeys, "***", false)
	for _, k := range []string{
		"token", "Api-Key", "API_KEY", "apikey", "X-Access-Key", "X-JWT", "Authorization", "oauth", "Proxy-Authorization",
		"x-authenticity-token", "session_id", "PHPSESSID", "csrf", "X-XSRF-TOKEN", "private.key", "mysql_pwd", "cvv", "cvc",
		"Set-Cookie", "credentials", "passwd", "X-Hub-Signature-256", "auth2", "authorization_code",
	} {
		if !on.Secret(k) {
			t.Errorf("%q: not secret", k)
		}
		if off.Secret(k) && !strings.Contains(strings.ToLower(k), "password") && !strings.Contains(strings.ToLower(k), "secret") {
			t.Errorf("%q: secret with the built-in list off", k)
		}
	}
	for _, k := range []string{
		"id", "user", "username", "name", "amount", "email", "route", "page", "design", "signal", "author", "authors",
		"authority", ":authority", "author_id", "coauthor", "user_agent", "X-Request-Id", "X-Forwarded-For", "keyword",
		"monkey", "passenger", "description", "status", "order_id", "pin", "sig", "otp", "key", "content-type", "",
	} {
		if on.Secret(k) {
			t.Errorf("%q: secret", k)
		}
	}
	for _, k := range []string{"password", "NEW_PASSWORD", "client-secret", "Pass-Word"} {
		if !off.Secret(k) {
			t.Errorf("%q: not secret with the built-in list off", k)
		}
	}
	// with the built-in list off, shapes stay and URL passwords go
	in := "card 4111111111111111 Bearer mF_9.B5f-4.1JqM token=t postgres://u:pw@h/db"
	if got, want := off.Text(in), "card 4111111111111111 Bearer mF_9.B5f-4.1JqM token=t postgres://u:***@h/db"; got != want {
		t.Errorf("built-in list off: %q, want %q", got, want)
	}
	// configured fragments with separators, or non-ASCII, match as names do
	cust := NewMasker([]string{"pin_code", "clé", "_"}, "***", false)
	for _, k := range []string{"PinCode", "user-pin-code", "CLÉ", "ma_clé", "a_b"} {
		if !cust.Secret(k) {
			t.Errorf("custom %q: not secret", k)
		}
	}
	if got := cust.Text("PIN-CODE=1 CLÉ=2 x=3"); got != "PIN-CODE=*** CLÉ=*** x=3" {
		t.Errorf("custom text: %q", got)
	}
}

// TestMaskTreeKeys: map keys are masked as text, keys that mask to one
// name keep all their entries (numbered in key order), headers, query and
// form maps hide the built-in fragments.
func TestMaskTreeKeys(t *testing.T) {
	m := NewMasker(testKeys, "***", true)
	out := m.Value(map[string]any{
		`{"password":"hunter2"}`: "v",
		"note 4111111111111111":  1,
		"note 5555555555554444":  2,
		"note *** (2)":           3,
		"plain":                  "postgres://u:pw2@h/db",
		"nested":                 map[string]string{"token=abc": "x"},
	}).(map[string]any)
	b, _ := json.Marshal(out)
	for _, s := range []string{"hunter2", "pw2", "abc", "4111", "5555"} {
		if strings.Contains(string(b), s) {
			t.Errorf("%q survived: %s", s, b)
		}
	}
	if len(out) != 6 {
		t.Errorf("%d keys, want 6: %s", len(out), b)
	}
	for k, want := range map[string]any{"note ***": 1, "note *** (2)": 3, "note *** (3)": 2, `{"password":"***"}`: "***"} {
		if out[k] != want {
			t.Errorf("%q = %v, want %v: %s", k, out[k], want, b)
		}
	}
	for range 20 { // the same whatever the map's order
		if again, _ := json.Marshal(m.Value(map[string]any{"a 4111111111111111": 1, "a 5555555555554444": 2})); string(again) != `{"a ***":1,"a *** (2)":2}` {
			t.Fatalf("numbering depends on order: %s", again)
		}
	}
	h := http.Header{"X-Jwt": {"j1"}, "X-Access-Key": {"k1"}, "X-Api-Key": {"k2"}, "Cookie": {"sid=c1; theme=dark"}, "Accept": {"text/html"}}
	q := map[string][]string{"token": {"t1"}, "api_key": {"t2"}, "access_token": {"t3"}, "passwd": {"t4"}, "page": {"2"}}
	got, _ := json.Marshal(map[string]any{"headers": Tree(h, m.Key, m.With, nil), "query": Tree(q, m.Key, m.With, nil)})
	if want := `{"headers":{"Accept":"text/html","Cookie":"sid=***; theme=***","X-Access-Key":"***","X-Api-Key":"***","X-Jwt":"***"},` +
		`"query":{"access_token":"***","api_key":"***","page":"2","passwd":"***","token":"***"}}`; string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// TestMaskLinear bounds the work of masking adversarial texts: the bytes
// masker.scan examines, the output buffer it allocates and the number of
// allocations are at most a constant times the input (a constant for the
// allocations), at 1 KiB as at 1 MiB. No clock is read.
func TestMaskLinear(t *testing.T) {
	m := NewMasker(testKeys, testMask, true)
	for _, sh := range append([]maskShape{benignShape}, adversarialShapes...) {
		for _, n := range []int{1 << 10, 32 << 10, 1 << 20} {
			s := sh.make(n)
			ts := textScan{m: m, s: s}
			ts.run()
			if ts.work > hzMaskWork(len(s)) {
				t.Errorf("%s, %d bytes: %d bytes examined (%.1f per byte)", sh.name, len(s), ts.work, float64(ts.work)/float64(len(s)))
			}
			if ts.out.Cap() > 2*hzMaskGrowth(len(s), len(m.With)) {
				t.Errorf("%s, %d bytes: a %d-byte buffer", sh.name, len(s), ts.out.Cap())
			}
			if out := m.Text(s); len(out) > hzMaskGrowth(len(s), len(m.With)) {
				t.Errorf("%s, %d bytes: %d bytes out", sh.name, len(s), len(out))
			}
			if n == 1<<20 {
				continue // AllocsPerRun runs it 11 times
			}
			if a := testing.AllocsPerRun(3, func() { m.Text(s) }); a > 12 {
				t.Errorf("%s, %d bytes: %.0f allocations", sh.name, len(s), a)
			}
		}
	}
	// 100 headers of 8 KiB, through maskTree as errmon stores them
	for _, sh := range append([]maskShape{benignShape}, adversarialShapes...) {
		h := http.Header{}
		for i := range 100 {
			h[fmt.Sprintf("X-Custom-%02d", i)] = []string{sh.make(8 << 10)}
		}
		in, work, out := 0, 0, 0
		Tree(h, m.Key, m.With, func(s string) string {
			masked, w := m.scan(s)
			in, work, out = in+len(s), work+w, out+len(masked)
			return masked
		})
		if work > hzMaskWork(in) || out > hzMaskGrowth(in, len(m.With)) {
			t.Errorf("%s: 100 headers, %d bytes: %d examined, %d out", sh.name, in, work, out)
		}
	}
}

// testKeys and testMask are errmon's defaults of Config.MaskedKeyHas and
// Config.MaskWith.
var (
	testKeys = []string{"password", "secret"}
	testMask = "**************"
)
