package text

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// Fuzz tests for the code that handles attacker-controlled text: the
// message normalizer behind fingerprints, the masker (free text and decoded
// trees) and the request context builder. Their seed corpora live in
// testdata/fuzz/FuzzXxx and run with every `go test`; to search for new
// failures run, for instance:
//
//	go test -run XXX -fuzz FuzzNormalizeMessage -fuzztime 60s .

// FuzzNormalizeMessage: never panics; valid UTF-8 in gives valid UTF-8 out;
// no digit survives (numbers never split a group); normalizing twice
// changes nothing; the result is at most 3 times the bytes it reads (a
// digit becomes "<n>"), whatever the shape.
func FuzzNormalizeMessage(f *testing.F) {
	for _, s := range []string{
		"", "index 5 out of range [7]", "runtime error: index out of range [3] with length 3",
		"user 4f1c2a9e-8b7d-4c3e-9a1f-0e2d3c4b5a69 not found", "at 0xc000123abc", "commit deadbeef1234 failed",
		"2026-11-25T14:39:05.123+01:00 timeout", "goroutine 42 [running]", "é" + strings.Repeat("9", 1100),
		strings.Repeat("日本", 400) + "123", "\x00\xff1", "0x", "1e10 1.5 -3 +4", "abcdef abc123 ABCDEF12",
		// long runs of digits, hex and separators
		strings.Repeat("1", 4<<10), strings.Repeat("deadbeef", 200), strings.Repeat("0x", 600),
		strings.Repeat("-", 2000), strings.Repeat("1-", 700), strings.Repeat("4f1c2a9e-8b7d-", 100),
		strings.Repeat("2026-11-25T", 120), strings.Repeat("a1 ", 500),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Normalize(s)
		if strings.ContainsAny(out, "0123456789") {
			t.Errorf("a digit survived: %q -> %q", s, out)
		}
		if utf8.ValidString(s) && !utf8.ValidString(out) {
			t.Errorf("valid UTF-8 in, invalid out: %.120q", out)
		}
		if len(out) > 3*min(len(s), MaxNormalized) {
			t.Errorf("%d bytes in, %d out", len(s), len(out))
		}
		if len(out) <= MaxNormalized {
			if again := Normalize(out); again != out {
				t.Errorf("not idempotent: %q -> %q -> %q", s, out, again)
			}
		}
	})
}

// hzKeyChars keeps the characters a key may have in free text.
func hzKeyChars(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r == '-' || r == '.' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}

// hzValueChars drops what ends a bare value in free text (ASCII spaces,
// separators and quotes): a value that holds them is ambiguous in text.
func hzValueChars(s string) string {
	return strings.Map(func(r rune) rune {
		if strings.ContainsRune(" \t\n\r\f\v&,;}]\"'\\@/?#", r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, s)
}

// hzMaskWork bounds the bytes masker.scan may examine, and hzMaskGrowth
// the output, for a text of n bytes: both linear.
func hzMaskWork(n int) int         { return 8*n + 64 }
func hzMaskGrowth(n, with int) int { return (with+3)*n + with + 2 }

// hzSecretWords are key words that make a key secret, configured
// (password, secret) and built in, in assorted cases and separators.
var hzSecretWords = []string{
	"password", "secret", "PassWord", "SECRET", "api_key", "X-Api-Key", "access_token", "Session",
	"jwt", "pwd", "Authorization", "cvv", "private-key", "csrf", "credential", "passwd",
}

// FuzzMaskText: a value written under a secret key in free text (key=value,
// key: value, JSON, quoted, URL userinfo, a DSN, after an authentication
// scheme) never survives masker.text; whatever the text, masking examines
// a number of bytes linear in its length and the output is at most a
// constant times longer.
func FuzzMaskText(f *testing.F) {
	f.Add("", "", "hunter22", uint8(0), "login failed")
	f.Add("db_", "_hash", "p@ss:w=rd!", uint8(1), "")
	f.Add("X-", "", "Zm9vYmFy==", uint8(2), `{"a":1}`)
	f.Add("client.", "[0]", "ünïcödé-value", uint8(3), "\x00")
	f.Add("", "Confirm", "s3cr3t%20value", uint8(4), "url ")
	f.Add("my", "", "abc123xyz", uint8(5), "connect to")
	f.Add("", "", "valuevalue", uint8(6), "")
	f.Add("", "", "tok3n-value", uint8(0x48), "Bearer")
	f.Add("eyJa.b.", "", "v4lue-v4lue", uint8(0x10), "eyJa.eyJb.c")
	f.Add("", "", "secret=inner", uint8(0xa9), "root:")
	for _, sh := range adversarialShapes {
		f.Add("", "", "hunter22", uint8(len(sh.unit)), sh.make(4<<10))
	}
	m := NewMasker([]string{"password", "secret"}, testMask, true)
	f.Fuzz(func(t *testing.T, prefix, suffix, value string, form uint8, around string) {
		if out, work := m.scan(around); work > hzMaskWork(len(around)) || len(out) > hzMaskGrowth(len(around), len(m.With)) {
			t.Errorf("%d bytes: %d examined, %d out", len(around), work, len(out))
		}
		prefix, suffix, value = hzKeyChars(prefix), hzKeyChars(suffix), hzValueChars(value)
		if len(value) < 6 || !utf8.ValidString(value) {
			return
		}
		word := hzSecretWords[int(form>>4)%len(hzSecretWords)]
		key := prefix + word + suffix
		var text string
		switch form % 11 {
		case 0:
			text = key + "=" + value
		case 1:
			text = key + ": " + value
		case 2:
			text = `{"` + key + `": "` + value + `"}`
		case 3:
			text = `{"` + key + `":"` + value + `","other":1}`
		case 4:
			text = key + "='" + value + "'"
		case 5:
			text = "postgres://user:" + strings.ReplaceAll(value, ":", "") + "@host/db " + key + "=" + value
		case 6:
			text = "a=1&" + key + "=" + value + "&b=2"
		case 7:
			text = key + ` = "` + value + `"`
		case 8:
			text = key + ": Bearer " + value
		case 9:
			text = "root:" + value + "@tcp(db:3306)/app"
		case 10:
			text = "amqp://guest:" + value + "@" + value[:2] + "@rabbit/"
		}
		full := around + " " + text + " tail"
		if strings.Contains(around, value) || strings.Contains(key, value) || strings.Contains(testMask, value) ||
			strings.Contains("postgres://user:@host/db a=1&b=2other tail: Bearer root:@tcp(db:3306)/app amqp://guest:@@rabbit/", value) {
			return // the value also appears where it is no secret
		}
		out, work := m.scan(full)
		if strings.Contains(out, value) {
			t.Errorf("secret survived:\n in: %q\nout: %q", full, out)
		}
		if work > hzMaskWork(len(full)) || len(out) > hzMaskGrowth(len(full), len(m.With)) {
			t.Errorf("%d bytes: %d examined, %d out", len(full), work, len(out))
		}
	})
}

// hzCheckMasked walks a masked tree: every secret key holds the mask (a
// cookie header its names, each with the mask).
func hzCheckMasked(t *testing.T, m *Masker, v any, path string) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			switch {
			case strings.EqualFold(k, "cookies"):
				if c, ok := e.(map[string]any); ok {
					for n, cv := range c {
						if cv != m.With {
							t.Errorf("%s.%s.%s = %v, want the mask", path, k, n, cv)
						}
					}
					continue
				}
			case strings.EqualFold(k, "cookie"):
				if c, ok := e.(string); ok {
					for _, p := range strings.Split(c, "; ") {
						if _, v, _ := strings.Cut(p, "="); p != "" && v != m.With {
							t.Errorf("%s.%s = %q, want every value masked", path, k, c)
						}
					}
					continue
				}
			}
			if m.Secret(k) && e != m.With {
				t.Errorf("%s.%s = %v, want the mask", path, k, e)
			}
			hzCheckMasked(t, m, e, path+"."+k)
		}
	case []any:
		for i, e := range x {
			hzCheckMasked(t, m, e, path+"["+string(rune('0'+i%10))+"]")
		}
	}
}

// FuzzMaskTree: in any JSON document, the value of every key that names a
// secret is masked at any depth; a secret planted under a secret key, or
// in a key written as text, never survives; keys that mask to one name
// keep their entries; the output is at most a constant times larger.
func FuzzMaskTree(f *testing.F) {
	for _, s := range []string{
		`{}`, `[]`, `null`, `"x"`, `{"password":"a"}`, `{"a":{"b":[{"MySecret":{"x":1}}]}}`,
		`{"headers":{"Authorization":"Bearer x","Cookie":"a=1; b=2","X-Token":"t"}}`,
		`[{"password":null},{"secret":[1,2,{"password":"z"}]}]`, `{"":"", "pass word":"x"}`,
		`{"a":"password=hunter2 and secret: xyz"}`, `{"\u0000password":"v","\ud800":"w"}`,
		`{"{\"password\":\"hunter2\"}":"x"}`, `{"card 4111111111111111":1,"card 5555555555554444":2,"card ************** (2)":3}`,
		`{"cookies":{"sid":"v"},"Cookie":"a=1"}`, `{"a":"` + strings.Repeat(`password=[`, 300) + `"}`,
		`{"x":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln","token":"t","api-key":"k","author":"visible"}`,
		`{"` + strings.Repeat(`@`, 500) + `":"` + strings.Repeat(`://`, 500) + `"}`,
	} {
		f.Add([]byte(s))
	}
	m := NewMasker([]string{"password", "secret"}, testMask, true)
	f.Fuzz(func(t *testing.T, data []byte) {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) != nil {
			return
		}
		const planted, plantedKey = "PLANTED-kq7wz-value", "PLANTED-kq7wz-key"
		tree := map[string]any{"doc": v, "deep": []any{v, map[string]any{"user_password": planted, "x": v}},
			"keys": map[string]any{"password=" + plantedKey: 1}}
		out := Tree(tree, m.Key, m.With, m.Text)
		hzCheckMasked(t, m, out, "$")
		b, err := json.Marshal(out)
		if err != nil {
			t.Fatalf("masked tree cannot be encoded: %v", err)
		}
		if !bytes.Contains(data, []byte(planted)) && bytes.Contains(b, []byte(planted)) {
			t.Errorf("planted secret survived: %s", b)
		}
		if !bytes.Contains(data, []byte("PLANTED")) && bytes.Contains(b, []byte(plantedKey)) {
			t.Errorf("secret written in a key survived: %s", b)
		}
		if in, ok := v.(map[string]any); ok {
			if got := out.(map[string]any)["doc"].(map[string]any); len(got) != len(in) {
				t.Errorf("%d keys in, %d out: %s", len(in), len(got), b)
			}
		}
		if in, _ := json.Marshal(tree); len(b) > (len(m.With)+12)*len(in)+64 {
			t.Errorf("%d bytes in, %d out", len(in), len(b))
		}
	})
}
