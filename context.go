package errmon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

// ContextBuilder builds the request context stored with an error. It runs
// on the request path, after a failure, while the request is still valid.
// mask reports whether a key (a header, cookie, parameter or JSON key) must
// be hidden and the value to show instead. errmon masks the result again
// before storing it, so a builder cannot leak a configured secret by
// mistake; a builder that panics is recovered and its error recorded.
type ContextBuilder interface {
	BuildContext(c *gin.Context, mask func(key string) (masked bool, value string)) map[string]any
}

// DefaultContextBuilder records the request's method, URL (with a masked
// query string), route and parameters, host, client IP, headers (with
// credentials and every cookie value hidden), query parameters, form
// fields, uploaded file names and the body: decoded and masked at any depth
// when it is JSON or a form, as text when it is other text, and as a size
// when it is binary.
type DefaultContextBuilder struct {
	maskWith string // set by New; "" means DefaultMaskWith
}

// BuildContext implements ContextBuilder.
func (d DefaultContextBuilder) BuildContext(c *gin.Context, mask func(key string) (bool, string)) map[string]any {
	r := c.Request
	with := d.maskWith
	if with == "" {
		with = DefaultMaskWith
	}
	ctx := map[string]any{
		"method":    r.Method,
		"url":       r.URL.Path,
		"host":      r.Host,
		"route":     c.FullPath(),
		"client_ip": c.ClientIP(),
		"proto":     r.Proto,
	}
	if raw := r.URL.RawQuery; raw != "" {
		ctx["url"] = r.URL.Path + "?" + maskQuery(raw, mask)
		if vs, err := url.ParseQuery(raw); err == nil {
			ctx["query"] = maskTree(vs, mask, with, nil)
		}
	}
	if len(c.Params) > 0 {
		params := make(map[string]any, len(c.Params))
		for _, p := range c.Params {
			params[p.Key] = p.Value
		}
		ctx["params"] = maskTree(params, mask, with, nil)
	}
	if len(r.Header) > 0 {
		ctx["headers"] = maskTree(r.Header, mask, with, nil)
	}
	if cookies := r.Cookies(); len(cookies) > 0 {
		names := make(map[string]any, len(cookies))
		for _, ck := range cookies {
			names[ck.Name] = with
		}
		ctx["cookies"] = names
	}
	addBody(ctx, c, mask, with)
	return ctx
}

// addBody adds the decoded request body to ctx.
func addBody(ctx map[string]any, c *gin.Context, mask func(string) (bool, string), with string) {
	r := c.Request
	if r.MultipartForm != nil {
		ctx["form"] = maskTree(r.MultipartForm.Value, mask, with, nil)
		files := map[string]any{}
		for field, fhs := range r.MultipartForm.File {
			var list []any
			for _, fh := range fhs {
				list = append(list, map[string]any{"filename": fh.Filename, "size": fh.Size})
			}
			files[field] = list
		}
		if len(files) > 0 {
			ctx["files"] = files
		}
		return
	}
	body, truncated := RequestBody(c)
	if len(body) == 0 {
		if len(r.PostForm) > 0 {
			ctx["form"] = maskTree(r.PostForm, mask, with, nil)
		}
		return
	}
	if truncated {
		ctx["body_truncated"] = true
	}
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	trimmed := bytes.TrimSpace(body)
	switch {
	case strings.Contains(mediaType, "json") || (mediaType == "" && len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[')):
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var v any
		if !truncated && dec.Decode(&v) == nil {
			ctx["json"] = maskTree(v, mask, with, nil)
			return
		}
		// Cut short (or malformed): keep what could be read, in its
		// structure, so that secret keys are masked at any depth.
		if v := partialJSON(body); v != nil {
			ctx["json"] = maskTree(v, mask, with, nil)
			ctx["json_incomplete"] = true
			return
		}
	case mediaType == "application/x-www-form-urlencoded":
		if vs, err := url.ParseQuery(string(body)); err == nil && !truncated {
			ctx["form"] = maskTree(vs, mask, with, nil)
			return
		}
	case strings.HasPrefix(mediaType, "multipart/"):
		ctx["body"] = fmt.Sprintf("<multipart body, %d bytes not parsed by the handler>", len(body))
		return
	}
	if !utf8.Valid(body) || bytes.IndexByte(body, 0) >= 0 {
		ctx["body"] = fmt.Sprintf("<%d bytes of binary data>", len(body))
		return
	}
	// Free text (or JSON cut short): kept, and masked as text before it is
	// stored.
	ctx["body"] = string(body)
}

// maxPartialDepth bounds the nesting partialJSON follows.
const maxPartialDepth = 256

// partialJSON decodes a JSON document that was cut short: the values read
// before the cut, in their structure. A string or number cut in the middle
// is left out. It returns nil when not even the start could be read.
func partialJSON(body []byte) any {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	v, _ := readPartial(dec, 0)
	return v
}

func readPartial(dec *json.Decoder, depth int) (any, error) {
	if depth > maxPartialDepth {
		return nil, errors.New("too deep")
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil
	}
	switch d {
	case '{':
		obj := map[string]any{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return obj, err
			}
			k, _ := kt.(string)
			v, err := readPartial(dec, depth+1)
			if v != nil || err == nil {
				obj[k] = v
			}
			if err != nil {
				return obj, err
			}
		}
		_, err := dec.Token()
		return obj, err
	case '[':
		arr := []any{}
		for dec.More() {
			v, err := readPartial(dec, depth+1)
			if v != nil || err == nil {
				arr = append(arr, v)
			}
			if err != nil {
				return arr, err
			}
		}
		_, err := dec.Token()
		return arr, err
	}
	return nil, errors.New("unexpected delimiter")
}

// maskQuery masks a raw query string, keeping its order and encoding.
func maskQuery(raw string, mask func(string) (bool, string)) string {
	parts := strings.Split(raw, "&")
	for i, p := range parts {
		k, _, hasValue := strings.Cut(p, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		if secret, with := mask(name); secret && hasValue {
			parts[i] = k + "=" + url.QueryEscape(with)
		}
	}
	return strings.Join(parts, "&")
}

// requestLine returns "METHOD /path?masked-query", for logs.
func requestLine(r *http.Request, mask func(string) (bool, string)) string {
	target := r.URL.Path
	if r.URL.RawQuery != "" {
		target += "?" + maskQuery(r.URL.RawQuery, mask)
	}
	return r.Method + " " + target + " " + r.Proto
}
