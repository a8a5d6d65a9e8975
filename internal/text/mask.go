package text

import (
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Masker hides secret values. A key is secret when its name contains one of
// the configured fragments or, unless built-in masking is off, one of
// builtinKeyFragments; headers that carry credentials are secret whatever
// the configuration. Names are compared ignoring ASCII case and the
// separators '-', '_' and '.', so "api_key", "Api-Key" and "apikey" are one
// name.
type Masker struct {
	keys    *fragmentSet
	raw     []string // configured fragments made only of separators, matched as they are
	unicode bool     // some fragment has non-ASCII bytes: such names are lower-cased first
	With    string
	builtin bool // also hide secret-shaped values (cards, JWTs, credentials) in text
}

// builtinKeyFragments are the key fragments masked in addition to
// Config.MaskedKeyHas unless Config.DisableBuiltinMasking is set: in
// headers, query parameters, form and multipart fields, JSON keys at any
// depth, path parameters and key=value pairs in text. A name matches when,
// with ASCII case, '-', '_' and '.' ignored, it contains one of
//
//	password passwd pwd passphrase secret token apikey accesskey privatekey
//	credential session sessid csrf xsrf jwt bearer cookie signature cvv cvc
//
// or "auth", except where "auth" only begins "author" (author, authors,
// authority, authored stay readable; authorization, authorize, authorise,
// auth_token, oauth, x-auth and authentication are masked). So api_key,
// X-Api-Key, access_token, X-Access-Key, private_key, mysql_pwd, sessionid,
// PHPSESSID, csrftoken, X-XSRF-TOKEN, set-cookie, X-JWT and card_cvv are
// secret; id, user, name, email, amount, route, page, design, signal,
// author and X-Forwarded-For are not. "sig", "pin", "otp" and "key" alone
// are left out: they are parts of too many ordinary words.
var builtinKeyFragments = []string{
	"password", "passwd", "pwd", "passphrase", "secret", "token", "apikey", "accesskey", "privatekey",
	"credential", "session", "sessid", "csrf", "xsrf", "jwt", "bearer", "cookie", "signature", "cvv", "cvc",
}

// alwaysSecretHeader lists header name fragments that always hide the
// value, compared as key names are (apikey is also api-key and api_key).
var alwaysSecretHeader = []string{
	"authorization", "cookie", "apikey", "token", "session", "password", "secret", "csrf", "xsrf",
	"signature", "credential",
}

// alwaysSecretHeaders matches alwaysSecretHeader.
var alwaysSecretHeaders = newFragmentSet(alwaysSecretHeader, false)

// NewMasker returns a masker for the given lower-cased key fragments
// (Config.MaskedKeyHas) and mask (Config.MaskWith); builtin adds
// builtinKeyFragments and the scrubbing of secret-shaped values.
func NewMasker(keys []string, with string, builtin bool) *Masker {
	frags := keys
	if builtin {
		frags = append(slices.Clip(keys), builtinKeyFragments...)
	}
	m := &Masker{With: with, builtin: builtin}
	for _, k := range frags {
		if normalizeFragment(k) == "" {
			m.raw = append(m.raw, strings.ToLower(k))
		}
		if !isASCII(k) {
			m.unicode = true
		}
	}
	m.keys = newFragmentSet(frags, builtin)
	return m
}

// Secret reports whether key names a Secret.
func (m *Masker) Secret(key string) bool {
	if key == "" {
		return false
	}
	if m.unicode && !isASCII(key) {
		key = strings.ToLower(key)
	}
	if m.keys.has(key) {
		return true
	}
	for _, r := range m.raw {
		if strings.Contains(strings.ToLower(key), r) {
			return true
		}
	}
	return false
}

// secretRun is secret for a run of key bytes, without the call in the
// usual case (ASCII fragments, none made only of separators).
func (m *Masker) secretRun(run string) bool {
	if !m.unicode && m.raw == nil {
		return m.keys.has(run)
	}
	return m.Secret(run)
}

// SecretHeader reports whether a header's value must be hidden.
func (m *Masker) SecretHeader(name string) bool {
	return m.Secret(name) || SecretHeaderName(name)
}

// Key returns the mask function handed to a ContextBuilder.
func (m *Masker) Key(key string) (bool, string) {
	if m.Secret(key) {
		return true, m.With
	}
	return false, ""
}

// Text hides the secrets written in free Text (raw bodies, messages, query
// strings, header values) in one pass, in time linear in len(s):
//
//   - the value of a secret key written key=value, key: value,
//     "key": "value" or 'key': 'value'. A quoted value ends at its closing
//     quote (or the end of a Text cut short); a value that opens a bracket
//     ("passwords": ["a", {"b": 1}]) ends at the bracket that closes it (or
//     the end); a bare value ends at white space or one of & , ; } ] " '.
//     A bare value that is itself a secret key (password=secret=x) is hidden
//     with what that key holds; after white space (password= secret=x) it is
//     the next pair. After an authentication scheme (Authorization: Bearer
//     x) the credential is hidden and the scheme kept;
//   - URL passwords: scheme://user:pass@host, the password running to the
//     last '@' before the host as net/url reads it, and the passwords of
//     DSNs such as user:pass@tcp(host)/db or user:pass@/db;
//   - unless built-in masking is off, secret-shaped values wherever they
//     stand: card numbers (13 to 19 digits, alone or in groups joined by
//     single spaces or dashes, passing the Luhn check, the first digit 2
//     to 9 so that Unix times in ms, µs or ns stay readable), JWTs (eyJ...
//     then two or more '.'-joined base64url segments), and the credential
//     after "Bearer " (8 characters or more, with a digit, a capital after
//     the first character or one of -._~+/=) or "Basic " (base64 that
//     decodes to user:password).
//
// Each hidden part takes at least two bytes of s (a key and its
// separator, or more) and becomes the mask and at most four quote bytes,
// so the result is at most len(s) + (len(mask)+4)·len(s)/2 bytes.
func (m *Masker) Text(s string) string {
	out, _ := m.scan(s)
	return out
}

// scan is text, also returning the number of bytes it examined (each byte
// is examined a bounded number of times; the tests check that bound).
func (m *Masker) scan(s string) (string, int) {
	if s == "" {
		return s, 0
	}
	t := textScan{m: m, s: s}
	t.run()
	if t.out.Cap() == 0 {
		return s, t.work
	}
	t.out.WriteString(s[t.last:])
	return t.out.String(), t.work
}

// Byte classes of the text scanner.
const (
	bKey      = 1 << iota // may be part of a key: ASCII letters and digits, _ . - [ ] and non-ASCII bytes
	bSpace                // ASCII white space
	bStop                 // ends a bare value: white space and & , ; } ] " '
	bDelim                // ends a token such as a URL or a DSN: white space and " ' ` < >
	bAlnum                // ASCII letters and digits
	bB64                  // base64url: ASCII letters, digits, - and _
	bDigit                // ASCII digits
	bAfterKey             // may follow a key: white space, = : " ' and \\
)

// byteClass holds the classes of each byte.
var byteClass = func() (c [256]uint8) {
	for b := 0; b < 256; b++ {
		isAlnum := 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
		if isAlnum {
			c[b] |= bAlnum | bB64 | bKey
		}
		if '0' <= b && b <= '9' {
			c[b] |= bDigit
		}
		if b >= 0x80 || strings.IndexByte("_.-[]", byte(b)) >= 0 {
			c[b] |= bKey
		}
		if b == '-' || b == '_' {
			c[b] |= bB64
		}
		if strings.IndexByte(" \t\n\v\f\r", byte(b)) >= 0 {
			c[b] |= bSpace | bStop | bDelim
		}
		if strings.IndexByte("&,;}]\"'", byte(b)) >= 0 {
			c[b] |= bStop
		}
		if strings.IndexByte("\"'`<>", byte(b)) >= 0 {
			c[b] |= bDelim
		}
		if strings.IndexByte(" \t\n\v\f\r=:\"'\\", byte(b)) >= 0 {
			c[b] |= bAfterKey
		}
	}
	return c
}()

// textScan is one pass of masker.text over s.
type textScan struct {
	m    *Masker
	s    string
	out  strings.Builder // empty until the first replacement
	last int             // s[last:] is not in out yet
	work int             // bytes examined
}

// hide replaces s[from:to] (from >= last) with the mask, between the
// quotes q (none when q is "").
func (t *textScan) hide(from, to int, q string) {
	n := from - t.last + 2*len(q) + len(t.m.With)
	switch {
	case t.out.Cap() == 0:
		t.out.Grow(max(n, len(t.s)+2*len(t.m.With)+4))
	case t.out.Cap()-t.out.Len() < n:
		t.out.Grow(max(n, t.out.Len())) // double: the output may grow with every pair
	}
	t.out.WriteString(t.s[t.last:from])
	if q == "" {
		t.out.WriteString(t.m.With)
	} else {
		t.out.WriteString(q)
		t.out.WriteString(t.m.With)
		t.out.WriteString(q)
	}
	t.last = to
}

// run scans s once. Pairs are tried where a key can start, shapes where
// they can start; whatever they consume is skipped, so no byte is scanned
// again from another position. The loop itself reads each byte at most
// once (every branch advances i); work counts the lookaheads on top.
func (t *textScan) run() {
	s := t.s
	t.work += len(s)
	pwFrom, pwTo := len(s), len(s) // a URL or DSN password ahead
	resume := 0                    // a pair or a shape ended here: a key may start
	token := 0                     // where the current token starts, or len(s) once its ':' was seen
	for i := 0; i < len(s); {
		if i >= pwFrom {
			if i < pwTo {
				t.hide(i, pwTo, "")
				i, resume = pwTo, pwTo
			}
			pwFrom = len(s)
			continue
		}
		c := s[i]
		class := byteClass[c]
		if class&bKey != 0 {
			runEnd, plain := i+1, false // unknown unless a pair was tried
			if i == resume || byteClass[s[i-1]]&bKey == 0 {
				var end int
				if end, runEnd, plain = t.pair(i); end > i {
					i, resume, token = end, end, min(token, end)
					continue
				}
			}
			if t.m.builtin && (class&bDigit != 0 || c == 'e' || c|0x20 == 'b') {
				if end := t.shape(i); end > i {
					i, resume = end, end
					continue
				}
			}
			if plain || !t.m.builtin {
				i = runEnd // no pair and no shape starts in the rest of the run
				continue
			}
			// The rest of the run, up to a byte after which a shape may
			// start (one that is no ASCII letter or digit).
			for i++; i < len(s) && byteClass[s[i]]&bKey != 0 && byteClass[s[i-1]]&bAlnum != 0; i++ {
			}
			continue
		}
		switch {
		case c == ':' && strings.HasPrefix(s[i:], "://"):
			pwFrom, pwTo = t.userinfo(i + 3)
			i, token = i+3, len(s)
			continue
		case c == ':' && i >= token:
			pwFrom, pwTo, token = t.dsnPassword(i)
		case class&bDelim != 0:
			token = i + 1
		}
		i++
	}
}

// key reports whether s[i:] starts with a secret key (a run of key bytes)
// and its separator: an optional closing quote (escaped or not), white
// space, '=' or ':' (and any of = : > right after it, as in := or =>). It
// returns where the run of key bytes ends and whether it is all ASCII
// letters and digits, and, for a key, where its value starts (after white
// space) and whether white space came before the value.
func (t *textScan) key(i int) (end int, plain bool, value int, spaced, ok bool) {
	s := t.s
	j, all := i, uint8(bAlnum)
	for j < len(s) && byteClass[s[j]]&bKey != 0 {
		all &= byteClass[s[j]]
		j++
	}
	plain = all != 0
	t.work += j - i
	if j == len(s) || byteClass[s[j]]&bAfterKey == 0 {
		return j, plain, 0, false, false
	}
	k := j
	if k < len(s) && s[k] == '\\' && k+1 < len(s) && s[k+1] == '"' {
		k++
	}
	if k < len(s) && s[k] == '"' {
		k++
	}
	if k < len(s) && s[k] == '\'' {
		k++
	}
	for k < len(s) && byteClass[s[k]]&bSpace != 0 {
		k++
	}
	t.work += k - j
	if k == len(s) || s[k] != '=' && s[k] != ':' || !t.m.secretRun(s[i:j]) {
		return j, plain, 0, false, false
	}
	t.work += j - i // the automaton's pass
	sep := k
	for k++; k < len(s) && (s[k] == '=' || s[k] == ':' || s[k] == '>'); k++ {
	}
	v := k
	for v < len(s) && byteClass[s[v]]&bSpace != 0 {
		v++
	}
	t.work += v - sep
	return j, plain, v, v > k, true
}

// pair hides the value of the secret key that starts at i, if one does,
// and returns where the value ends (i when there is none), where the run
// of key bytes at i ends and whether that run is all ASCII letters and
// digits.
func (t *textScan) pair(i int) (valueEnd, runEnd int, plain bool) {
	s := t.s
	end, plain, v, spaced, ok := t.key(i)
	if !ok {
		return i, end, plain
	}
	if t.m.builtin && s[i] == 'e' && t.jwtEnd(i, end) == end {
		t.hide(i, end, "") // a token that reads like a key
	}
	from := -1 // a chain of keys hidden with the value at its end
	for v < len(s) && byteClass[s[v]]&bKey != 0 {
		r := v
		for r < len(s) && byteClass[s[r]]&bKey != 0 {
			r++
		}
		if t.work += r - v; r == len(s) || byteClass[s[r]]&bAfterKey == 0 {
			break // no separator can follow: the value is no key
		}
		_, _, next, nextSpaced, ok := t.key(v)
		if !ok {
			break
		}
		if from < 0 && !spaced {
			from = v
		}
		v, spaced = next, nextSpaced
	}
	hideFrom, valueEnd, q := t.value(v)
	if from >= 0 {
		hideFrom, q = from, ""
	}
	t.hide(hideFrom, valueEnd, q)
	return valueEnd, end, plain
}

// authSchemes are the HTTP authentication schemes whose credential follows
// the scheme name after a space.
var authSchemes = []string{"bearer", "basic", "token", "digest", "negotiate", "ntlm"}

// value returns the part of the value at v to hide, and its quotes: a
// quoted string (in escaped quotes too, as JSON inside a JSON string
// has), a bracketed value, or a bare value (the credential only, after an
// authentication scheme).
func (t *textScan) value(v int) (from, end int, q string) {
	s := t.s
	if v == len(s) {
		return v, v, ""
	}
	switch c := s[v]; c {
	case '"', '\'':
		e := v + 1
		for e < len(s) && s[e] != c {
			if c == '"' && s[e] == '\\' {
				e++
			}
			e++
		}
		e = min(e+1, len(s))
		t.work += e - v
		return v, e, s[v : v+1]
	case '[', '{':
		e := v + bracketEnd(s[v:])
		t.work += e - v
		return v, e, ""
	case '\\':
		if strings.HasPrefix(s[v:], `\"`) {
			e := strings.Index(s[v+2:], `\"`)
			if e = v + 2 + e + 2; e < v+4 {
				e = len(s)
			}
			t.work += e - v
			return v, e, `\"`
		}
	}
	e := bareEnd(s, v)
	t.work += e - v
	if e < len(s) && s[e] == ' ' && slices.ContainsFunc(authSchemes, func(w string) bool { return strings.EqualFold(w, s[v:e]) }) {
		k := e
		for k < len(s) && s[k] == ' ' {
			k++
		}
		te := bareEnd(s, k)
		t.work += te - e
		if te > k {
			return k, te, ""
		}
	}
	return v, e, ""
}

// bareEnd returns where the bare value at v ends.
func bareEnd(s string, v int) int {
	for v < len(s) && byteClass[s[v]]&bStop == 0 {
		v++
	}
	return v
}

// bracketEnd returns the length of the bracketed value s starts with (up
// to the bracket that closes it, strings skipped), or len(s) when s ends
// first.
func bracketEnd(s string) int {
	end, _ := JSONNesting(s, math.MaxInt, true)
	return end
}

// userinfo scans the authority of a URL, from a (after "://"), and returns
// the span of its password ([-1, -1) when there is none): from the first
// ':' to the last '@', as net/url splits it.
func (t *textScan) userinfo(a int) (from, to int) {
	s := t.s
	colon, at := -1, -1
	e := a
	for ; e < len(s); e++ {
		c := s[e]
		if c == '/' || c == '?' || c == '#' || byteClass[c]&bDelim != 0 {
			break
		}
		switch c {
		case ':':
			if colon < 0 {
				colon = e
			}
		case '@':
			at = e
		}
	}
	t.work += e - a
	if colon < 0 || at < colon {
		return -1, -1
	}
	return colon + 1, at
}

// dsnPassword scans the token whose first ':' is at colon and returns
// the span of a DSN's password in it ([len(s), len(s)) when there is
// none): from the colon to the last '@' followed by the address, as in
// user:pass@tcp(host:3306)/db, user:pass@unix(/sock)/db or user:pass@/db.
// It also returns where the token ends.
func (t *textScan) dsnPassword(colon int) (from, to, end int) {
	s := t.s
	at := -1
	e := colon + 1
	for ; e < len(s) && byteClass[s[e]]&bDelim == 0; e++ {
		if s[e] == '@' && dsnHost(s[e+1:]) {
			at = e
		}
	}
	t.work += e - colon
	if at < 0 {
		return len(s), len(s), e
	}
	return colon + 1, at, e
}

// dsnHost reports whether a is the address part of a DSN after its '@': a
// protocol and its address, such as tcp(host:3306) or unix(/sock), or '/'
// (the default address). It reads at most 17 bytes.
func dsnHost(a string) bool {
	e := 0
	for e < len(a) && e < 16 && byteClass[a[e]]&bAlnum != 0 {
		e++
	}
	return e < len(a) && (a[e] == '(' || a[e] == '/' && e == 0)
}

// shape hides the secret-shaped value that starts at i, if one does, and
// returns where it ends (i when there is none).
func (t *textScan) shape(i int) int {
	s := t.s
	var prev byte
	if i > 0 {
		prev = s[i-1]
	}
	switch c := s[i]; {
	case byteClass[c]&bDigit != 0:
		// A number starts here, not inside a word, a phone number, a
		// fraction or another group of digits.
		if byteClass[prev]&bAlnum != 0 || prev == '+' || (prev == ' ' || prev == '-' || prev == '.') && i >= 2 && byteClass[s[i-2]]&bDigit != 0 {
			return i
		}
		return t.card(i)
	case c == 'e':
		if byteClass[prev]&bB64 != 0 || prev == '.' {
			return i
		}
		if e := t.jwtEnd(i, len(s)); e > i {
			t.hide(i, e, "")
			return e
		}
	case c == 'b' || c == 'B':
		if byteClass[prev]&bAlnum != 0 {
			return i
		}
		return t.credential(i)
	}
	return i
}

// card hides the card number at i, if there is one, and returns where it
// ends. It reads at most 19 digits and the separators between them.
func (t *textScan) card(i int) int {
	s := t.s
	var d [19]byte
	n, e := 0, i
	for e < len(s) {
		c := s[e]
		if byteClass[c]&bDigit != 0 {
			if n == len(d) {
				n++
				break
			}
			d[n] = c - '0'
			n, e = n+1, e+1
			continue
		}
		if (c == ' ' || c == '-') && e+1 < len(s) && byteClass[s[e+1]]&bDigit != 0 {
			e++
			continue
		}
		break
	}
	t.work += e - i
	if n < 13 || n > len(d) || d[0] < 2 || e < len(s) && byteClass[s[e]]&bAlnum != 0 || !luhn(d[:n]) {
		return i
	}
	t.hide(i, e, "")
	return e
}

// luhn reports whether the digits pass the Luhn check.
func luhn(d []byte) bool {
	sum := 0
	for k := range d {
		x := int(d[len(d)-1-k])
		if k%2 == 1 {
			if x *= 2; x > 9 {
				x -= 9
			}
		}
		sum += x
	}
	return sum%10 == 0
}

// jwtEnd returns where the JWT at i ends, within s[:limit], or i when
// there is none: "eyJ" and base64url, then two or more '.' each followed
// by base64url, the first two segments not empty.
func (t *textScan) jwtEnd(i, limit int) int {
	s := t.s
	if !strings.HasPrefix(s[i:limit], "eyJ") {
		return i
	}
	e, dots, segment, empty := i, 0, i, false
	for ; e < limit; e++ {
		c := s[e]
		if c == '.' {
			if e == segment && dots < 2 {
				empty = true
			}
			dots, segment = dots+1, e+1
			continue
		}
		if byteClass[c]&bB64 == 0 {
			break
		}
	}
	t.work += e - i
	if dots < 2 || empty {
		return i
	}
	return e
}

// credential hides the credential after "Bearer " or "Basic " at i, if
// there is one, and returns where it ends.
func (t *textScan) credential(i int) int {
	s := t.s
	var basic bool
	var k int
	switch {
	case len(s)-i > 6 && strings.EqualFold(s[i:i+6], "bearer"):
		k = i + 6
	case len(s)-i > 5 && strings.EqualFold(s[i:i+5], "basic"):
		k, basic = i+5, true
	default:
		return i
	}
	if s[k] != ' ' {
		return i
	}
	for k < len(s) && s[k] == ' ' {
		k++
	}
	e := bareEnd(s, k)
	t.work += e - i
	if basic && !basicCredentials(s[k:e]) || !basic && !tokenLike(s[k:e]) {
		return i
	}
	t.hide(k, e, "")
	return e
}

// tokenLike reports whether w reads as a token rather than a word: 8
// bytes or more, with a digit, a capital after the first byte or one of
// -._~+/=.
func tokenLike(w string) bool {
	if len(w) < 8 {
		return false
	}
	for i := 0; i < len(w); i++ {
		c := w[i]
		if byteClass[c]&bDigit != 0 || i > 0 && 'A' <= c && c <= 'Z' || strings.IndexByte("-._~+/=", c) >= 0 {
			return true
		}
	}
	return false
}

// basicCredentials reports whether w is standard base64 (padded or not)
// of a text that holds a ':', as user:password does.
func basicCredentials(w string) bool {
	w = strings.TrimRight(w, "=")
	if len(w) < 4 || len(w)%4 == 1 {
		return false
	}
	var acc uint32
	bits, colon := 0, false
	for i := 0; i < len(w); i++ {
		v := base64Value[w[i]]
		if v < 0 {
			return false
		}
		acc, bits = acc<<6|uint32(v), bits+6
		if bits >= 8 {
			bits -= 8
			colon = colon || byte(acc>>bits) == ':'
		}
	}
	return colon
}

// base64Value is the value of each byte in standard base64, -1 for bytes
// outside its alphabet.
var base64Value = func() (v [256]int8) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := range v {
		v[i] = int8(strings.IndexByte(alphabet, byte(i)))
	}
	return v
}()

// Value masks a decoded structure: every map key that names a secret, at
// any depth, has its Value replaced, and secrets written in text (keys
// included) are hidden. It returns a new structure.
func (m *Masker) Value(v any) any { return Tree(v, m.Key, m.With, m.Text) }

// Tree returns a copy of v in which the value of every map key that
// mask reports secret is replaced, at any depth. A map under the key
// "headers" also has its credential headers and cookie values replaced by
// with; a map under the key "cookies" and a Cookie header written as
// text have all their values replaced and their names kept. leaf, when not nil, rewrites every string left, map keys included
// (see maskMap).
func Tree(v any, mask func(string) (bool, string), with string, leaf func(string) string) any {
	switch t := v.(type) {
	case string:
		if leaf != nil {
			return leaf(t)
		}
		return t
	case map[string]any:
		return maskMap(t, func(x any) any { return x }, mask, with, leaf)
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = Tree(x, mask, with, leaf)
		}
		return out
	case []string:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = Tree(x, mask, with, leaf)
		}
		return out
	case map[string]string:
		return maskMap(t, func(x string) any { return x }, mask, with, leaf)
	case map[string][]string:
		return maskMap(t, joinValues, mask, with, leaf)
	case url.Values:
		return Tree(map[string][]string(t), mask, with, leaf)
	case http.Header:
		return Tree(HeaderTree(map[string][]string(t), with), mask, with, leaf)
	}
	return v
}

// maskMap is Tree for a map whose values val turns into trees. The
// secret test reads the original key; leaf rewrites the key itself. Two
// keys that leaf rewrites to one name keep both entries: the map is then
// done again in key order, and the later ones become "name (2)",
// "name (3)" and so on, the same whatever the map's order.
func maskMap[V any](t map[string]V, val func(V) any, mask func(string) (bool, string), with string, leaf func(string) string) map[string]any {
	entry := func(k string, x V) any {
		v := val(x)
		switch {
		case strings.EqualFold(k, "cookies"):
			if names, ok := cookieTree(v, with); ok {
				return Tree(names, mask, with, leaf)
			}
		case strings.EqualFold(k, "cookie"):
			if header, ok := v.(string); ok {
				return Tree(CookieNames(header, with), mask, with, leaf)
			}
		}
		if secret, w := mask(k); secret {
			return w
		}
		if strings.EqualFold(k, "headers") {
			v = HeaderTree(v, with)
		}
		return Tree(v, mask, with, leaf)
	}
	out := make(map[string]any, len(t))
	clash := false
	for k, x := range t {
		name := k
		if leaf != nil {
			name = leaf(k)
		}
		if _, dup := out[name]; dup {
			clash = true
			break
		}
		out[name] = entry(k, x)
	}
	if !clash {
		return out
	}
	clear(out)
	next := map[string]int{} // the next number to try, by name
	for _, k := range slices.Sorted(maps.Keys(t)) {
		name := leaf(k)
		if _, dup := out[name]; dup {
			n := max(next[name], 2)
			numbered := name + " (" + strconv.Itoa(n) + ")"
			for _, dup := out[numbered]; dup; _, dup = out[numbered] {
				n++
				numbered = name + " (" + strconv.Itoa(n) + ")"
			}
			next[name] = n + 1
			name = numbered
		}
		out[name] = entry(k, t[k])
	}
	return out
}

// HeaderTree hides credential headers and cookie values in a header map,
// whatever its concrete type.
func HeaderTree(x any, with string) any {
	hide := func(k string, v any) any {
		if strings.EqualFold(k, "Cookie") {
			if s, ok := v.(string); ok {
				return CookieNames(s, with)
			}
			return with
		}
		if SecretHeaderName(k) {
			return with
		}
		return v
	}
	switch t := x.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, v := range t {
			out[k] = hide(k, v)
		}
		return out
	case map[string]string:
		out := make(map[string]any, len(t))
		for k, v := range t {
			out[k] = hide(k, v)
		}
		return out
	case map[string][]string:
		out := make(map[string]any, len(t))
		for k, v := range t {
			out[k] = hide(k, joinValues(v))
		}
		return out
	case http.Header:
		return HeaderTree(map[string][]string(t), with)
	}
	return x
}

// cookieTree hides every value of a map of cookies, whatever the names
// (which stay), and reports whether x was such a map.
func cookieTree(x any, with string) (any, bool) {
	var names []string
	switch t := x.(type) {
	case map[string]any:
		names = slices.Collect(maps.Keys(t))
	case map[string]string:
		names = slices.Collect(maps.Keys(t))
	case map[string][]string:
		names = slices.Collect(maps.Keys(t))
	default:
		return nil, false
	}
	out := make(map[string]any, len(names))
	for _, n := range names {
		out[n] = with
	}
	return out, true
}

// SecretHeaderName reports whether a header carries credentials whatever
// the configuration (see alwaysSecretHeader).
func SecretHeaderName(name string) bool { return alwaysSecretHeaders.has(name) }

// CookieNames keeps the names of a Cookie header and hides every value.
func CookieNames(v, with string) string {
	parts := strings.Split(v, ";")
	names := make([]string, 0, len(parts))
	for _, p := range parts {
		name, _, _ := strings.Cut(strings.TrimSpace(p), "=")
		if name != "" {
			names = append(names, name+"="+with)
		}
	}
	return strings.Join(names, "; ")
}

// joinValues returns a one-value list as its value, and a copy of others.
func joinValues(v []string) any {
	if len(v) == 1 {
		return v[0]
	}
	return append([]string(nil), v...)
}

// fragmentSet finds fragments in names in one pass: an Aho-Corasick
// automaton over byte classes, one table step per byte. ASCII case is
// ignored and '-', '_' and '.' are skipped, in names and fragments alike.
type fragmentSet struct {
	class [256]uint8 // byte -> column; skipByte for separators; 0 for bytes in no fragment
	width int        // columns
	// next[row+column], row = state*width, is the next state's row
	// shifted left by 2, with its flags in the low 2 bits.
	next  []int32
	flags []uint8 // by state, while building
}

// A fragmentSet's class of the separators, and its state flags.
const (
	skipByte = 255
	matchNow = 1 // the name holds a fragment
	matchEnd = 2 // the name holds a fragment if it ends here
)

// newFragmentSet builds the set of the given fragments; auth adds "auth"
// except where it only begins "author" (see builtinKeyFragments).
func newFragmentSet(frags []string, auth bool) *fragmentSet {
	f := &fragmentSet{width: 1}
	for _, c := range []byte("-_.") {
		f.class[c] = skipByte
	}
	norm := make([]string, 0, len(frags)+2)
	for _, fr := range frags {
		if n := normalizeFragment(fr); n != "" {
			norm = append(norm, n)
		}
	}
	if auth {
		norm = append(norm, "authoriz", "authoris")
	}
	for _, n := range norm {
		for i := 0; i < len(n); i++ {
			if c := n[i]; f.class[c] == 0 {
				f.class[c] = uint8(f.width)
				if 'a' <= c && c <= 'z' {
					f.class[c-'a'+'A'] = uint8(f.width)
				}
				f.width++
			}
		}
	}
	type pattern struct {
		cols []int
		flag uint8
	}
	cols := func(s string) []int {
		c := make([]int, len(s))
		for i := range c {
			c[i] = int(f.class[s[i]])
		}
		return c
	}
	pats := make([]pattern, 0, len(norm)+2*f.width+2)
	for _, n := range norm {
		pats = append(pats, pattern{cols(n), matchNow})
	}
	if auth {
		// "auth" then anything but 'o', "autho" then anything but 'r',
		// or either at the end of the name.
		for c := range f.width {
			if c != int(f.class['o']) {
				pats = append(pats, pattern{append(cols("auth"), c), matchNow})
			}
			if c != int(f.class['r']) {
				pats = append(pats, pattern{append(cols("autho"), c), matchNow})
			}
		}
		pats = append(pats, pattern{cols("auth"), matchEnd}, pattern{cols("autho"), matchEnd})
	}
	// The trie, then its missing transitions along the failure links,
	// breadth first.
	row := func() []int32 { return slices.Repeat([]int32{-1}, f.width) }
	rows := [][]int32{row()}
	f.flags = []uint8{0}
	for _, p := range pats {
		s := 0
		for _, c := range p.cols {
			if rows[s][c] < 0 {
				rows[s][c] = int32(len(rows))
				rows = append(rows, row())
				f.flags = append(f.flags, 0)
			}
			s = int(rows[s][c])
		}
		f.flags[s] |= p.flag
	}
	fail := make([]int32, len(rows))
	queue := make([]int32, 0, len(rows))
	for c := range f.width {
		if t := rows[0][c]; t > 0 {
			queue = append(queue, t)
		} else {
			rows[0][c] = 0
		}
	}
	for q := 0; q < len(queue); q++ {
		s := queue[q]
		f.flags[s] |= f.flags[fail[s]]
		for c := range f.width {
			if t := rows[s][c]; t > 0 {
				fail[t] = rows[fail[s]][c]
				queue = append(queue, t)
			} else {
				rows[s][c] = rows[fail[s]][c]
			}
		}
	}
	f.next = slices.Concat(rows...)
	for i, t := range f.next {
		f.next[i] = t*int32(f.width)<<2 | int32(f.flags[t])
	}
	return f
}

// has reports whether name holds one of the fragments.
func (f *fragmentSet) has(name string) bool {
	t := int32(0) // the root's row, no flags
	for i := 0; i < len(name); i++ {
		c := f.class[name[i]]
		if c == skipByte {
			continue
		}
		if t = f.next[int(t>>2)+int(c)]; t&matchNow != 0 {
			return true
		}
	}
	return t&matchEnd != 0
}

// normalizeFragment lower-cases ASCII letters and drops '-', '_' and '.'.
func normalizeFragment(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '-' || c == '_' || c == '.':
		case 'A' <= c && c <= 'Z':
			b = append(b, c-'A'+'a')
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

// isASCII reports whether s has only ASCII bytes.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
