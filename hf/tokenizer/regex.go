package tokenizer

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Hugging Face compiles Split/Replace patterns with Oniguruma, whose \s, \d
// and \w are Unicode-aware and which supports look-around. Go's regexp (RE2)
// has ASCII \s\d\w and no look-around. translateRegex rewrites the escapes,
// and the one look-around that real tokenizers use, `\s+(?!\S)|\s+` (GPT-2,
// cl100k/Llama-3, Qwen...), is emulated: it becomes a named group `\s+` whose
// matches give back their last whitespace char when a non-space follows.

const (
	uniSpaceClass = `\t-\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}`
	lookaheadWS   = `\s+(?!\S)|\s+`
	wsGroupName   = "hftokws"
)

// gregex is a translated pattern.
type gregex struct {
	src  string
	re   *regexp.Regexp
	wsIx int // submatch index of the emulated \s+(?!\S)|\s+ group, or -1
}

// Patterns that have hand-written scanners: GPT-2's (the ByteLevel
// pre-tokenizer's), cl100k's (Llama-3, GPT-4) and Qwen2's.
const (
	gpt2Pattern   = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	cl100kPattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	qwen2Pattern  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// compileRegex translates an Oniguruma pattern to Go and compiles it.
func compileRegex(pattern string) (*gregex, error) {
	wsIx := -1
	p := pattern
	if strings.Contains(p, lookaheadWS) {
		p = strings.Replace(p, lookaheadWS, `(?P<`+wsGroupName+`>\s+)`, 1)
	}
	tr, err := translateRegex(p)
	if err != nil {
		return nil, err
	}
	re, err := regexp.Compile(tr)
	if err != nil {
		return nil, fmt.Errorf("regex %q is not supported by Go's regexp (translated to %q): %v", pattern, tr, err)
	}
	if strings.Contains(p, wsGroupName) {
		wsIx = re.SubexpIndex(wsGroupName)
	}
	return &gregex{src: pattern, re: re, wsIx: wsIx}, nil
}

// uniWordClass is the inside of a class for Oniguruma's Unicode \w, from the
// generated Unicode tables (ucd.go).
func uniWordClass() string {
	var b strings.Builder
	for _, c := range []string{"L", "M", "Nd", "Pc"} {
		body, _ := ucdClassBodies(ucdCategories[c])
		b.WriteString(body)
	}
	return b.String()
}

// translateRegex rewrites Oniguruma escapes into RE2 equivalents and rejects
// look-around and other constructs RE2 lacks. Unicode properties (\p{L},
// \P{N}, \p{Han}...) and \d, \w become explicit ranges of the generated
// Unicode 16 tables, since Go's regexp knows only Unicode 15.
func translateRegex(p string) (string, error) {
	var b strings.Builder
	nd, _ := ucdClassBodies(ucdCategories["Nd"])
	inClass := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\' && i+1 < len(p):
			e := p[i+1]
			i++
			switch e {
			case 's':
				if inClass {
					b.WriteString(uniSpaceClass)
				} else {
					b.WriteString("[" + uniSpaceClass + "]")
				}
			case 'S':
				if inClass {
					return "", fmt.Errorf("regex %q: \\S inside a character class is not supported", p)
				}
				b.WriteString("[^" + uniSpaceClass + "]")
			case 'd':
				if inClass {
					b.WriteString(nd)
				} else {
					b.WriteString("[" + nd + "]")
				}
			case 'D':
				if inClass {
					return "", fmt.Errorf("regex %q: \\D inside a character class is not supported", p)
				}
				b.WriteString("[^" + nd + "]")
			case 'p', 'P':
				if tr, end, ok := translateProperty(p, i-1, inClass); ok {
					b.WriteString(tr)
					i = end
				} else {
					b.WriteByte('\\')
					b.WriteByte(e)
				}
			case 'w':
				if inClass {
					b.WriteString(uniWordClass())
				} else {
					b.WriteString("[" + uniWordClass() + "]")
				}
			case 'W':
				if inClass {
					return "", fmt.Errorf("regex %q: \\W inside a character class is not supported", p)
				}
				b.WriteString("[^" + uniWordClass() + "]")
			case 'h':
				b.WriteString(`[0-9a-fA-F]`)
			default:
				b.WriteByte('\\')
				b.WriteByte(e)
			}
		case c == '[' && !inClass:
			inClass = true
			b.WriteByte(c)
			// A ']' right after '[' or '[^' is a literal.
			if i+1 < len(p) && p[i+1] == '^' {
				b.WriteByte('^')
				i++
			}
			if i+1 < len(p) && p[i+1] == ']' {
				b.WriteString(`\]`)
				i++
			}
		case c == '[' && inClass:
			end := strings.Index(p[i:], ":]")
			if !strings.HasPrefix(p[i:], "[:") || end < 0 {
				return "", fmt.Errorf("regex %q: nested character classes are not supported", p)
			}
			b.WriteString(p[i : i+end+2]) // POSIX class such as [:alpha:]
			i += end + 1
		case c == ']' && inClass:
			inClass = false
			b.WriteByte(c)
		case c == '(' && !inClass && strings.HasPrefix(p[i:], "(?="),
			c == '(' && !inClass && strings.HasPrefix(p[i:], "(?!"),
			c == '(' && !inClass && strings.HasPrefix(p[i:], "(?<="),
			c == '(' && !inClass && strings.HasPrefix(p[i:], "(?<!"),
			c == '(' && !inClass && strings.HasPrefix(p[i:], "(?>"):
			return "", fmt.Errorf("regex %q: look-around and atomic groups are not supported (only the `\\s+(?!\\S)|\\s+` idiom is)", p)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// findAll returns the byte ranges of the non-overlapping matches in s.
func (g *gregex) findAll(s string) [][2]int {
	var next func(s string, i int) int
	switch g.src {
	case gpt2Pattern:
		next = gpt2Next
	case cl100kPattern:
		next = func(s string, i int) int { return cl100kNext(s, i, 3) }
	case qwen2Pattern:
		next = func(s string, i int) int { return cl100kNext(s, i, 1) }
	}
	if next != nil {
		var out [][2]int
		for i := 0; i < len(s); {
			e := next(s, i)
			out = append(out, [2]int{i, e})
			i = e
		}
		return out
	}
	var out [][2]int
	if g.wsIx < 0 {
		for _, m := range g.re.FindAllStringIndex(s, -1) {
			out = append(out, [2]int{m[0], m[1]})
		}
		return out
	}
	for pos := 0; pos < len(s); {
		m := g.re.FindStringSubmatchIndex(s[pos:])
		if m == nil {
			break
		}
		a, e := m[0]+pos, m[1]+pos
		if m[2*g.wsIx] >= 0 && e < len(s) {
			r, _ := utf8.DecodeRuneInString(s[e:])
			if !isSpace(r) {
				_, lsz := utf8.DecodeLastRuneInString(s[a:e])
				if e-lsz > a {
					e -= lsz
				}
			}
		}
		if e == a {
			_, sz := utf8.DecodeRuneInString(s[a:])
			pos = a + sz
			continue
		}
		out = append(out, [2]int{a, e})
		pos = e
	}
	return out
}
