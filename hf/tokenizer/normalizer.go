package tokenizer

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// normalizer transforms a piece of text, keeping its alignments.
type normalizer interface {
	normalize(n nstr) nstr
}

type seqNormalizer []normalizer

func (s seqNormalizer) normalize(n nstr) nstr {
	for _, x := range s {
		n = x.normalize(n)
	}
	return n
}

// prependNormalizer prepends a string to non-empty input (HF "Prepend").
type prependNormalizer struct{ prefix string }

func (p prependNormalizer) normalize(n nstr) nstr {
	if n.s == "" {
		return n
	}
	var b nbuilder
	b.grow(len(n.s) + len(p.prefix))
	_, sz := utf8.DecodeRuneInString(n.s)
	b.add(p.prefix, n.spanOf(0, sz))
	b.addSlice(n, 0, len(n.s))
	return b.result()
}

// appendNormalizer appends a string to non-empty input (HF "Append").
type appendNormalizer struct{ suffix string }

func (p appendNormalizer) normalize(n nstr) nstr {
	if n.s == "" {
		return n
	}
	var b nbuilder
	b.grow(len(n.s) + len(p.suffix))
	b.addSlice(n, 0, len(n.s))
	_, sz := utf8.DecodeLastRuneInString(n.s)
	b.add(p.suffix, n.spanOf(len(n.s)-sz, len(n.s)))
	return b.result()
}

// replaceNormalizer replaces every non-overlapping match of a literal string
// or a regular expression by content (HF "Replace").
type replaceNormalizer struct {
	literal string         // used when re == nil
	re      *regexp.Regexp // regex pattern, content may use $1 expansions
	content string
}

// matches returns the byte ranges of the pattern in s.
func (r *replaceNormalizer) matches(s string) [][]int {
	if r.re != nil {
		return r.re.FindAllStringSubmatchIndex(s, -1)
	}
	if r.literal == "" {
		return nil
	}
	var out [][]int
	for off := 0; ; {
		i := strings.Index(s[off:], r.literal)
		if i < 0 {
			break
		}
		out = append(out, []int{off + i, off + i + len(r.literal)})
		off += i + len(r.literal)
	}
	return out
}

func (r *replaceNormalizer) replacement(s string, m []int) string {
	if r.re == nil {
		return r.content
	}
	return string(r.re.ExpandString(nil, r.content, s, m))
}

func (r *replaceNormalizer) normalize(n nstr) nstr {
	if r.re == nil {
		return r.normalizeLiteral(n)
	}
	ms := r.matches(n.s)
	if len(ms) == 0 {
		return n
	}
	var b nbuilder
	b.grow(len(n.s))
	prev := 0
	for _, m := range ms {
		if m[1] == m[0] {
			continue // empty matches replace nothing
		}
		b.addSlice(n, prev, m[0])
		b.add(r.replacement(n.s, m), lastRuneSpan(n, m[0], m[1]))
		prev = m[1]
	}
	b.addSlice(n, prev, len(n.s))
	return b.result()
}

func (r *replaceNormalizer) normalizeLiteral(n nstr) nstr {
	lit := r.literal
	if lit == "" {
		return n
	}
	count := strings.Count(n.s, lit)
	if count == 0 {
		return n
	}
	var b nbuilder
	b.grow(len(n.s) + count*(len(r.content)-len(lit)))
	prev := 0
	for {
		i := strings.Index(n.s[prev:], lit)
		if i < 0 {
			break
		}
		b.addSlice(n, prev, prev+i)
		b.add(r.content, lastRuneSpan(n, prev+i, prev+i+len(lit)))
		prev += i + len(lit)
	}
	b.addSlice(n, prev, len(n.s))
	return b.result()
}

// lastRuneSpan is the original span of the last char of n.s[a:b]: where HF
// aligns the replacement of a match.
func lastRuneSpan(n nstr, a, b int) span {
	_, sz := utf8.DecodeLastRuneInString(n.s[a:b])
	return n.spanOf(b-sz, b)
}

// replaceString applies the replace rule to a plain string (decoder use).
func (r *replaceNormalizer) replaceString(s string) string {
	if r.re != nil {
		return r.re.ReplaceAllString(s, r.content)
	}
	if r.literal == "" {
		return s
	}
	return strings.ReplaceAll(s, r.literal, r.content)
}

// unicodeNormalizer applies NFC, NFD, NFKC or NFKD.
type unicodeNormalizer struct{ form norm.Form }

func (u unicodeNormalizer) normalize(n nstr) nstr {
	if u.form.IsNormalString(n.s) {
		return n
	}
	var b nbuilder
	b.grow(len(n.s) + len(n.s)/4)
	var buf []byte
	for i := 0; i < len(n.s); {
		j := i + u.form.NextBoundaryInString(n.s[i:], true)
		if j <= i {
			j = len(n.s)
		}
		buf = u.form.AppendString(buf[:0], n.s[i:j])
		seg := string(buf)
		if seg == n.s[i:j] {
			b.addSlice(n, i, j)
		} else {
			// Output rune k aligns to input rune min(k, last), as HF's
			// alignment-tracking normalization does (a composed char takes
			// its first source char, added marks their base char).
			in := n.s[i:j]
			pos := 0
			for _, r := range seg {
				_, sz := utf8.DecodeRuneInString(in[pos:])
				b.addRune(r, n.spanOf(i+pos, i+pos+sz))
				if pos+sz < len(in) {
					pos += sz
				}
			}
		}
		i = j
	}
	return b.result()
}

// lowerRune writes Rust's char::to_lowercase of r.
func lowerRune(b *nbuilder, r rune, sp span) {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		b.addRune(r, sp)
		return
	}
	if s, ok := ucdLowerSpecial[r]; ok { // İ, the one unconditional multi-rune mapping
		b.add(s, sp)
		return
	}
	b.addRune(ucdToLower(r), sp)
}

type lowercaseNormalizer struct{}

func (lowercaseNormalizer) normalize(n nstr) nstr {
	return mapRunes(n, lowerRune)
}

// stripNormalizer removes leading and/or trailing whitespace (HF "Strip").
type stripNormalizer struct{ left, right bool }

func (s stripNormalizer) normalize(n nstr) nstr {
	a, e := 0, len(n.s)
	if s.left {
		for a < e {
			r, sz := utf8.DecodeRuneInString(n.s[a:])
			if !unicode.IsSpace(r) {
				break
			}
			a += sz
		}
	}
	if s.right {
		for e > a {
			r, sz := utf8.DecodeLastRuneInString(n.s[:e])
			if !unicode.IsSpace(r) {
				break
			}
			e -= sz
		}
	}
	return n.slice(a, e)
}

// stripAccentsNormalizer removes combining marks (HF "StripAccents").
type stripAccentsNormalizer struct{}

func (stripAccentsNormalizer) normalize(n nstr) nstr {
	return filterRunes(n, func(r rune) bool { return !unicode.Is(unicode.Mn, r) })
}

// filterRunes keeps the runes for which keep is true.
func filterRunes(n nstr, keep func(r rune) bool) nstr {
	var b nbuilder
	b.grow(len(n.s))
	for i := 0; i < len(n.s); {
		r, sz := utf8.DecodeRuneInString(n.s[i:])
		if keep(r) {
			b.addSlice(n, i, i+sz)
		}
		i += sz
	}
	return b.result()
}

// bertNormalizer reproduces HF's BertNormalizer.
type bertNormalizer struct {
	cleanText, chineseChars, stripAccents, lowercase bool
}

func bertIsWhitespace(r rune) bool {
	switch r {
	case '\t', '\n', '\r':
		return true
	}
	return unicode.IsSpace(r)
}

func bertIsControl(r rune) bool {
	switch r {
	case '\t', '\n', '\r':
		return false
	}
	return unicode.Is(unicode.C, r)
}

func isChineseChar(r rune) bool {
	switch {
	case r >= 0x4E00 && r <= 0x9FFF, r >= 0x3400 && r <= 0x4DBF,
		r >= 0x20000 && r <= 0x2A6DF, r >= 0x2A700 && r <= 0x2B73F,
		r >= 0x2B740 && r <= 0x2B81F, r >= 0x2B920 && r <= 0x2CEAF,
		r >= 0xF900 && r <= 0xFAFF, r >= 0x2F800 && r <= 0x2FA1F:
		return true
	}
	return false
}

func (bn bertNormalizer) normalize(n nstr) nstr {
	if bn.cleanText {
		n = mapRunes(n, func(b *nbuilder, r rune, sp span) {
			if r == 0 || r == 0xFFFD || bertIsControl(r) {
				return
			}
			if bertIsWhitespace(r) {
				r = ' '
			}
			b.addRune(r, sp)
		})
	}
	if bn.chineseChars {
		n = mapRunes(n, func(b *nbuilder, r rune, sp span) {
			if isChineseChar(r) {
				b.addRune(' ', sp)
				b.addRune(r, sp)
				b.addRune(' ', sp)
				return
			}
			b.addRune(r, sp)
		})
	}
	if bn.stripAccents {
		n = unicodeNormalizer{norm.NFD}.normalize(n)
		n = stripAccentsNormalizer{}.normalize(n)
	}
	if bn.lowercase {
		n = lowercaseNormalizer{}.normalize(n)
	}
	return n
}

// byteLevelNormalizer maps every byte to its GPT-2 byte-level character.
type byteLevelNormalizer struct{}

func (byteLevelNormalizer) normalize(n nstr) nstr { return byteLevelMap(n) }

// nmtNormalizer reproduces HF's Nmt normalizer (control-char cleanup).
type nmtNormalizer struct{}

func (nmtNormalizer) normalize(n nstr) nstr {
	return mapRunes(n, func(b *nbuilder, r rune, sp span) {
		switch {
		case r >= 0x0001 && r <= 0x0008, r == 0x000B, r >= 0x000E && r <= 0x001F, r == 0x007F, r == 0x008F, r == 0x009F:
			return
		case r == 0x0009, r == 0x000A, r == 0x000C, r == 0x000D, r == 0x1680,
			r >= 0x200B && r <= 0x200F, r == 0x2028, r == 0x2029, r == 0x2581,
			r == 0xFEFF, r == 0xFFFD:
			r = ' '
		}
		b.addRune(r, sp)
	})
}
