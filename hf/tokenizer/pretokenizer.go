package tokenizer

import (
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// preTokenizer splits (and possibly rewrites) pieces of normalized text into
// the words the model sees.
type preTokenizer interface {
	// preTokenize appends the pieces of in to dst (which must not share
	// memory with in) and returns dst.
	preTokenize(dst, in []nstr) []nstr
}

// Behavior says what a split does with the delimiters it finds (HF
// SplitDelimiterBehavior).
type Behavior int

// Delimiter behaviors; see Hugging Face's SplitDelimiterBehavior. For the
// input "the-final--countdown" split on '-':
const (
	Removed            Behavior = iota // "the" "final" "countdown"
	Isolated                           // "the" "-" "final" "-" "-" "countdown"
	MergedWithPrevious                 // "the-" "final-" "-" "countdown"
	MergedWithNext                     // "the" "-final" "-" "-countdown"
	Contiguous                         // "the" "-" "final" "--" "countdown"
)

var behaviorNames = map[string]Behavior{
	"Removed": Removed, "Isolated": Isolated, "MergedWithPrevious": MergedWithPrevious,
	"MergedWithNext": MergedWithNext, "Contiguous": Contiguous,
}

// splitByMatches cuts n at the byte ranges ms (sorted, non-overlapping) and
// applies behavior to the delimiters; empty pieces are dropped. The result is
// appended to dst.
func splitByMatches(dst []nstr, n nstr, ms [][2]int, b Behavior, invert bool) []nstr {
	type part struct {
		a, e  int
		match bool
	}
	parts := make([]part, 0, 2*len(ms)+1)
	prev := 0
	for _, m := range ms {
		if m[0] == m[1] {
			continue
		}
		if prev < m[0] {
			parts = append(parts, part{prev, m[0], false})
		}
		parts = append(parts, part{m[0], m[1], true})
		prev = m[1]
	}
	if prev < len(n.s) {
		parts = append(parts, part{prev, len(n.s), false})
	}
	if invert {
		for i := range parts {
			parts[i].match = !parts[i].match
		}
	}
	var out []part
	switch b {
	case Removed:
		out = parts[:0]
		for _, p := range parts {
			if !p.match {
				out = append(out, p)
			}
		}
	case Isolated:
		out = parts
	case MergedWithPrevious:
		prevMatch := false
		for _, p := range parts {
			if p.match && !prevMatch && len(out) > 0 {
				out[len(out)-1].e = p.e
			} else {
				out = append(out, part{p.a, p.e, false})
			}
			prevMatch = p.match
		}
	case MergedWithNext:
		prevMatch := false
		for i := len(parts) - 1; i >= 0; i-- {
			p := parts[i]
			if p.match && !prevMatch && len(out) > 0 {
				out[len(out)-1].a = p.a
			} else {
				out = append(out, part{p.a, p.e, false})
			}
			prevMatch = p.match
		}
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	case Contiguous:
		prevMatch := false
		for _, p := range parts {
			if p.match && prevMatch && len(out) > 0 {
				out[len(out)-1].e = p.e
			} else {
				out = append(out, p)
			}
			prevMatch = p.match
		}
	}
	for _, p := range out {
		if p.e > p.a {
			dst = append(dst, n.slice(p.a, p.e))
		}
	}
	return dst
}

// runeMatches returns one match per rune for which pred is true.
func runeMatches(s string, pred func(r rune) bool) [][2]int {
	var ms [][2]int
	for i := 0; i < len(s); {
		r, sz := utf8.DecodeRuneInString(s[i:])
		if pred(r) {
			ms = append(ms, [2]int{i, i + sz})
		}
		i += sz
	}
	return ms
}

// literalMatches returns the non-overlapping occurrences of lit in s.
func literalMatches(s, lit string) [][2]int {
	if lit == "" {
		return nil
	}
	var ms [][2]int
	for off := 0; ; {
		i := strings.Index(s[off:], lit)
		if i < 0 {
			return ms
		}
		ms = append(ms, [2]int{off + i, off + i + len(lit)})
		off += i + len(lit)
	}
}

// --- character classes -------------------------------------------------------

func isSpace(r rune) bool {
	if r < utf8.RuneSelf {
		return r == ' ' || (r >= '\t' && r <= '\r')
	}
	return unicode.IsSpace(r)
}

func isLetter(r rune) bool {
	if r < utf8.RuneSelf {
		return (r|0x20) >= 'a' && (r|0x20) <= 'z'
	}
	return unicode.Is(ucdCatL, r)
}

func isNumber(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= '0' && r <= '9'
	}
	return unicode.Is(ucdCatN, r)
}

// isWordChar is Rust regex's Unicode \w.
func isWordChar(r rune) bool {
	if r < utf8.RuneSelf {
		return r == '_' || isLetter(r) || (r >= '0' && r <= '9')
	}
	return unicode.Is(ucdCatL, r) || unicode.Is(ucdCatM, r) || unicode.Is(ucdCatNd, r) ||
		unicode.Is(ucdCatPc, r) || unicode.Is(ucdCatNl, r) ||
		unicode.Is(ucdPropOtherAlphabetic, r) || r == 0x200C || r == 0x200D
}

// isPunctuation is Rust's is_ascii_punctuation || Unicode P*.
func isPunctuation(r rune) bool {
	if r < utf8.RuneSelf {
		return (r >= '!' && r <= '/') || (r >= ':' && r <= '@') || (r >= '[' && r <= '`') || (r >= '{' && r <= '~')
	}
	return unicode.IsPunct(r)
}

const (
	clsSpace = iota
	clsLetter
	clsNumber
	clsOther
)

func runeClass(r rune) int {
	switch {
	case isSpace(r):
		return clsSpace
	case isLetter(r):
		return clsLetter
	case isNumber(r):
		return clsNumber
	}
	return clsOther
}

// scanClass returns the end of the run of runes of class cls starting at i.
func scanClass(s string, i, cls int) int {
	for i < len(s) {
		r, sz := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, sz = utf8.DecodeRuneInString(s[i:])
		}
		if runeClass(r) != cls {
			break
		}
		i += sz
	}
	return i
}

// gpt2Split appends to dst the matches of the GPT-2 pattern
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// over s, as a backtracking (Oniguruma) engine finds them. Every byte of s is
// covered by exactly one match.
func gpt2Split(dst [][2]int, s string) [][2]int {
	for i := 0; i < len(s); {
		e := gpt2Next(s, i)
		dst = append(dst, [2]int{i, e})
		i = e
	}
	return dst
}

// gpt2Next returns the end of the GPT-2 pattern match that starts at i < len(s).
func gpt2Next(s string, i int) int {
	r, sz := rune(s[i]), 1
	if r >= utf8.RuneSelf {
		r, sz = utf8.DecodeRuneInString(s[i:])
	}
	// 's 't 're 've 'm 'll 'd
	if r == '\'' && i+1 < len(s) {
		switch s[i+1] {
		case 's', 't', 'm', 'd':
			return i + 2
		case 'r', 'v':
			if i+2 < len(s) && s[i+2] == 'e' {
				return i + 3
			}
		case 'l':
			if i+2 < len(s) && s[i+2] == 'l' {
				return i + 3
			}
		}
	}
	// ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+' with the optional space.
	if r == ' ' && i+1 < len(s) {
		r2 := rune(s[i+1])
		if r2 >= utf8.RuneSelf {
			r2, _ = utf8.DecodeRuneInString(s[i+1:])
		}
		if c := runeClass(r2); c != clsSpace {
			return scanClass(s, i+1, c)
		}
	}
	if c := runeClass(r); c != clsSpace {
		return scanClass(s, i+sz, c)
	}
	// Whitespace: '\s+(?!\S)' then '\s+'.
	e, last := i, i
	for e < len(s) {
		r2, sz2 := rune(s[e]), 1
		if r2 >= utf8.RuneSelf {
			r2, sz2 = utf8.DecodeRuneInString(s[e:])
		}
		if !isSpace(r2) {
			break
		}
		last = e
		e += sz2
	}
	if e < len(s) && last > i {
		// Followed by a non-space: leave the last whitespace char to the next match.
		return last
	}
	return e
}

// --- byte level ----------------------------------------------------------------

var (
	byteToRune [256]rune
	byteToStr  [256]string
	runeToByte = map[rune]byte{}
)

func init() {
	n := 0
	for b := 0; b < 256; b++ {
		var r rune
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			r = rune(b)
		} else {
			r = rune(256 + n)
			n++
		}
		byteToRune[b] = r
		byteToStr[b] = string(r)
		runeToByte[r] = byte(b)
	}
}

// byteLevelMap maps every byte of n to its byte-level character.
func byteLevelMap(n nstr) nstr {
	var b nbuilder
	b.grow(len(n.s) * 2)
	for i := 0; i < len(n.s); i++ {
		str := byteToStr[n.s[i]]
		b.sb.WriteString(str)
		sp := n.spanOf(i, i+1)
		for k := 0; k < len(str); k++ {
			b.align = append(b.align, sp)
		}
	}
	return b.result()
}

// appendByteLevel appends the byte-level form of raw to dst.
func appendByteLevel(dst []byte, raw string) []byte {
	for i := 0; i < len(raw); i++ {
		dst = append(dst, byteToStr[raw[i]]...)
	}
	return dst
}

// materialize maps the pending byte-level pieces of in, for pre-tokenizers
// that must see the mapped text.
func materialize(in []nstr) []nstr {
	for i := range in {
		if in[i].bl {
			in[i] = byteLevelMap(in[i])
		}
	}
	return in
}

// prependString prepends p to non-empty n, aligned to n's first char.
func prependString(n nstr, p string) nstr {
	return prependNormalizer{p}.normalize(n)
}

type byteLevelPre struct {
	addPrefixSpace bool
	useRegex       bool
}

func (bl byteLevelPre) preTokenize(out, in []nstr) []nstr {
	in = materialize(in)
	for _, p := range in {
		if bl.addPrefixSpace && !strings.HasPrefix(p.s, " ") {
			p = prependString(p, " ")
		}
		if p.s == "" {
			continue
		}
		p.bl = true
		if !bl.useRegex {
			out = append(out, p)
			continue
		}
		for i := 0; i < len(p.s); {
			e := gpt2Next(p.s, i)
			out = append(out, p.slice(i, e))
			i = e
		}
	}
	return out
}

// PrependScheme says when Metaspace adds the replacement character in front of
// a piece.
type PrependScheme int

// Prepend schemes of the Metaspace pre-tokenizer.
const (
	PrependAlways PrependScheme = iota // every piece that does not start with it
	PrependFirst                       // only the piece that starts the input
	PrependNever                       // never
)

type metaspacePre struct {
	replacement string
	scheme      PrependScheme
	split       bool
}

func (m metaspacePre) preTokenize(out, in []nstr) []nstr {
	in = materialize(in)
	for _, p := range in {
		if strings.IndexByte(p.s, ' ') >= 0 {
			p = (&replaceNormalizer{literal: " ", content: m.replacement}).normalize(p)
		}
		switch m.scheme {
		case PrependAlways:
			if !strings.HasPrefix(p.s, m.replacement) {
				p = prependString(p, m.replacement)
			}
		case PrependFirst:
			if !strings.HasPrefix(p.s, m.replacement) && p.origStart() == 0 {
				p = prependString(p, m.replacement)
			}
		}
		if m.split {
			out = splitByMatches(out, p, literalMatches(p.s, m.replacement), MergedWithNext, false)
		} else if p.s != "" {
			out = append(out, p)
		}
	}
	return out
}

// splitPre is HF's Split pre-tokenizer.
type splitPre struct {
	literal  string
	re       *gregex // nil for literal patterns
	behavior Behavior
	invert   bool
}

func (sp splitPre) preTokenize(out, in []nstr) []nstr {
	in = materialize(in)
	for _, p := range in {
		var ms [][2]int
		if sp.re != nil {
			ms = sp.re.findAll(p.s)
		} else {
			ms = literalMatches(p.s, sp.literal)
		}
		out = splitByMatches(out, p, ms, sp.behavior, sp.invert)
	}
	return out
}

// runePre splits on every rune matching pred with the given behavior.
type runePre struct {
	pred     func(r rune) bool
	behavior Behavior
}

func (rp runePre) preTokenize(out, in []nstr) []nstr {
	in = materialize(in)
	for _, p := range in {
		out = splitByMatches(out, p, runeMatches(p.s, rp.pred), rp.behavior, false)
	}
	return out
}

// whitespacePre is HF's Whitespace pre-tokenizer: keeps the matches of
// \w+|[^\w\s]+ and drops the rest.
type whitespacePre struct{}

func (whitespacePre) preTokenize(out, in []nstr) []nstr {
	in = materialize(in)
	for _, p := range in {
		s := p.s
		for i := 0; i < len(s); {
			r, sz := utf8.DecodeRuneInString(s[i:])
			if isSpace(r) {
				i += sz
				continue
			}
			word := isWordChar(r)
			j := i + sz
			for j < len(s) {
				r2, sz2 := utf8.DecodeRuneInString(s[j:])
				if isSpace(r2) || isWordChar(r2) != word {
					break
				}
				j += sz2
			}
			out = append(out, p.slice(i, j))
			i = j
		}
	}
	return out
}

type seqPre []preTokenizer

var piecePool = sync.Pool{New: func() any { return new([]nstr) }}

func (s seqPre) preTokenize(out, in []nstr) []nstr {
	if len(s) == 0 {
		return append(out, in...)
	}
	a, b := piecePool.Get().(*[]nstr), piecePool.Get().(*[]nstr)
	defer piecePool.Put(a)
	defer piecePool.Put(b)
	cur := in
	for i, p := range s {
		if i == len(s)-1 {
			return p.preTokenize(out, cur)
		}
		*a = p.preTokenize((*a)[:0], cur)
		cur = *a
		a, b = b, a
	}
	return out
}

// cl100kNext returns the end of the match starting at i < len(s) of the
// cl100k / Llama-3 pattern
//
//	(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,D}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//
// with D = maxDigits (3 for Llama-3 and GPT-4, 1 for Qwen2), as a
// backtracking engine finds it.
func cl100kNext(s string, i, maxDigits int) int {
	r, sz := decodeAt(s, i)
	// (?i:'s|'t|'re|'ve|'m|'ll|'d)
	if r == '\'' && i+1 < len(s) {
		r2, sz2 := decodeAt(s, i+1)
		switch foldASCII(r2) {
		case 's', 't', 'm', 'd':
			return i + 1 + sz2
		case 'r', 'v':
			if i+1+sz2 < len(s) && foldASCII(rune(s[i+1+sz2])) == 'e' {
				return i + 2 + sz2
			}
		case 'l':
			if i+1+sz2 < len(s) && foldASCII(rune(s[i+1+sz2])) == 'l' {
				return i + 2 + sz2
			}
		}
	}
	cls := runeClass(r)
	crlf := r == '\r' || r == '\n'
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if cls == clsLetter {
		return scanClass(s, i+sz, clsLetter)
	}
	if !crlf && cls != clsNumber && i+sz < len(s) {
		if r2, _ := decodeAt(s, i+sz); isLetter(r2) {
			return scanClass(s, i+sz, clsLetter)
		}
	}
	// \p{N}{1,D}
	if cls == clsNumber {
		e := i + sz
		for k := 1; k < maxDigits && e < len(s); k++ {
			r2, sz2 := decodeAt(s, e)
			if !isNumber(r2) {
				break
			}
			e += sz2
		}
		return e
	}
	// ' ?[^\s\p{L}\p{N}]+[\r\n]*'
	start := -1
	if cls == clsOther {
		start = i
	} else if r == ' ' && i+1 < len(s) {
		if r2, _ := decodeAt(s, i+1); runeClass(r2) == clsOther {
			start = i + 1
		}
	}
	if start >= 0 {
		e := scanClass(s, start, clsOther)
		for e < len(s) && (s[e] == '\r' || s[e] == '\n') {
			e++
		}
		return e
	}
	// Whitespace run [i, j).
	j, last, nl := i, i, -1
	for j < len(s) {
		r2, sz2 := decodeAt(s, j)
		if !isSpace(r2) {
			break
		}
		if r2 == '\r' || r2 == '\n' {
			nl = j + sz2
		}
		last = j
		j += sz2
	}
	// \s*[\r\n]+ : up to the last line break of the run.
	if nl >= 0 {
		return nl
	}
	// \s+(?!\S) then \s+.
	if j < len(s) && last > i {
		return last
	}
	return j
}

func decodeAt(s string, i int) (rune, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(s[i:])
}

// foldASCII lowercases ASCII letters and folds ſ (U+017F) to s, as Unicode
// case-insensitive matching does for the contraction letters.
func foldASCII(r rune) rune {
	switch {
	case r >= 'A' && r <= 'Z':
		return r + 'a' - 'A'
	case r == 'ſ':
		return 's'
	}
	return r
}
