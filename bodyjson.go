package errmon

// A JSON request body decoded for the context: at most maxContextDepth
// levels, and what can be read of a body cut short or malformed.

import (
	"bytes"
	"encoding/json"
	"errors"
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
	_, deepest := jsonNesting(b, maxContextDepth, false)
	return deepest
}

// jsonNesting walks the brackets of a JSON text, strings skipped. It
// stops when containers nest maxDepth deep or, with untilClosed, when the
// container s starts with closes, and returns where it stopped (the byte
// after that closing bracket, or len(s)) and the deepest nesting seen. The
// masker finds the end of a bracketed value with it, the body capture how
// deep a body nests.
func jsonNesting[T string | []byte](s T, maxDepth int, untilClosed bool) (end, deepest int) {
	depth, inString := 0, false
	for i := 0; i < len(s) && deepest < maxDepth; i++ {
		c := s[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			depth++
			deepest = max(deepest, depth)
		case ']', '}':
			if depth--; depth == 0 && untilClosed {
				return i + 1, deepest
			}
		}
	}
	return len(s), deepest
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
