package errmon

// A JSON request body decoded for the context: at most maxContextDepth
// levels, and what can be read of a body cut short or malformed.

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/errmon/errmon/internal/text"
)

// partialJSON decodes a JSON document that may be cut short, reading it
// token by token: the values read before the cut, in their structure, with
// what nests deeper than depth container levels replaced by "[deeper
// levels cut]" (read past, not decoded). A string or number cut in the
// middle is left out. It returns nil when not even the start could be
// read, and whether the document was read to its end.
func partialJSON(body []byte, depth int) (v any, complete bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	v, err := readPartial(dec, depth)
	return v, err == nil
}

// jsonDepth returns how deeply containers nest in a JSON text, counting no
// further than maxContextDepth, without decoding it.
func jsonDepth(b []byte) int {
	_, deepest := text.JSONNesting(b, maxContextDepth, false)
	return deepest
}

// readPartial reads one value; left is the number of container levels it
// may still open.
func readPartial(dec *json.Decoder, left int) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil
	}
	if left <= 0 {
		return deeperMarker, skipValue(dec)
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
			v, err := readPartial(dec, left-1)
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
			v, err := readPartial(dec, left-1)
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

// skipValue reads past the rest of a container whose opening delimiter was
// just read, without recursion.
func skipValue(dec *json.Decoder) error {
	for open := 1; open > 0; {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			open++
		case json.Delim('}'), json.Delim(']'):
			open--
		}
	}
	return nil
}
