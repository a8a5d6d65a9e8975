package text

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// MarshalJSON encodes v as compact JSON without escaping &, < and > (the
// stored context is read by people; the dashboard escapes what it shows).
func MarshalJSON(v any) ([]byte, error) { return encodeJSON(v, "") }

// IndentJSON is marshalJSON indented by two spaces, for people to read in
// alerts and on the dashboard.
func IndentJSON(v any) ([]byte, error) { return encodeJSON(v, "  ") }

// encodeJSON encodes v without HTML escapes, indented by indent.
func encodeJSON(v any, indent string) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", indent)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode request context: %w", err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
