package text

// JSONNesting walks the brackets of a JSON text, strings skipped. It
// stops when containers nest maxDepth deep or, with untilClosed, when the
// container s starts with closes, and returns where it stopped (the byte
// after that closing bracket, or len(s)) and the deepest nesting seen. The
// masker finds the end of a bracketed value with it, the body capture how
// deep a body nests.
func JSONNesting[T string | []byte](s T, maxDepth int, untilClosed bool) (end, deepest int) {
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
