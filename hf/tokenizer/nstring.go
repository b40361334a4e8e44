package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// span is a byte range [start, end) in the original input text.
type span struct{ start, end int32 }

// nstr is a piece of (possibly normalized) text together with, for each of
// its bytes, the byte range of the original input it came from. It plays the
// role of Hugging Face's NormalizedString: slicing is zero-copy, and the
// alignments give token offsets into the original text.
//
// align == nil means the identity alignment: byte i of s is byte base+i of
// the input. bl marks a piece that the ByteLevel pre-tokenizer maps to its
// byte-level alphabet; s still holds the raw bytes and the mapping is done
// (and cached) by the model, or materialized by byteLevelMap when another
// pre-tokenizer must see it.
type nstr struct {
	s     string
	align []span // nil (identity) or len(align) == len(s)
	base  int
	bl    bool
}

// newNstr returns the identity nstr for text, starting at input offset base.
func newNstr(text string, base int) nstr { return nstr{s: text, base: base} }

// slice returns the sub-piece of bytes [a, b).
func (n nstr) slice(a, b int) nstr {
	if n.align == nil {
		return nstr{s: n.s[a:b], base: n.base + a, bl: n.bl}
	}
	return nstr{s: n.s[a:b], align: n.align[a:b], bl: n.bl}
}

// origStart is the original offset at which the piece starts.
func (n nstr) origStart() int {
	if n.align == nil {
		return n.base
	}
	if len(n.align) == 0 {
		return 0
	}
	return int(n.align[0].start)
}

// spanOf returns the original span covered by bytes [a, b) of n.
func (n nstr) spanOf(a, b int) span {
	if n.align == nil {
		// Like HF, a range that cuts a multi-byte char covers all of it.
		for a > 0 && a < len(n.s) && !utf8.RuneStart(n.s[a]) {
			a--
		}
		for b > 0 && b < len(n.s) && !utf8.RuneStart(n.s[b]) {
			b++
		}
		return span{int32(n.base + a), int32(n.base + b)}
	}
	if a >= b || b > len(n.align) {
		if a < len(n.align) {
			return span{n.align[a].start, n.align[a].start}
		}
		if len(n.align) > 0 {
			e := n.align[len(n.align)-1].end
			return span{e, e}
		}
		return span{}
	}
	return span{n.align[a].start, n.align[b-1].end}
}

// nbuilder accumulates a transformed nstr.
type nbuilder struct {
	sb    strings.Builder
	align []span
}

func (b *nbuilder) grow(n int) {
	b.sb.Grow(n)
	if cap(b.align)-len(b.align) < n {
		na := make([]span, len(b.align), len(b.align)+n)
		copy(na, b.align)
		b.align = na
	}
}

// add appends s, every byte of which aligns to sp.
func (b *nbuilder) add(s string, sp span) {
	b.sb.WriteString(s)
	for i := 0; i < len(s); i++ {
		b.align = append(b.align, sp)
	}
}

// addRune appends r aligned to sp.
func (b *nbuilder) addRune(r rune, sp span) {
	n, _ := b.sb.WriteRune(r)
	for i := 0; i < n; i++ {
		b.align = append(b.align, sp)
	}
}

// addSlice appends the bytes [a, c) of n with their own alignments.
func (b *nbuilder) addSlice(n nstr, a, c int) {
	b.sb.WriteString(n.s[a:c])
	if n.align != nil {
		b.align = append(b.align, n.align[a:c]...)
		return
	}
	for k := a; k < c; {
		_, sz := utf8.DecodeRuneInString(n.s[k:])
		sp := n.spanOf(k, k+sz)
		for e := k + sz; k < e; k++ {
			b.align = append(b.align, sp)
		}
	}
}

func (b *nbuilder) result() nstr { return nstr{s: b.sb.String(), align: b.align} }

// mapRunes applies f to every rune of n; f writes the replacement for rune r
// (at bytes [i, i+size)) into the builder. Returns n unchanged when f reports
// no change for any rune (fast path decided by the caller).
func mapRunes(n nstr, f func(b *nbuilder, r rune, sp span)) nstr {
	var b nbuilder
	b.grow(len(n.s))
	for i := 0; i < len(n.s); {
		r, sz := utf8.DecodeRuneInString(n.s[i:])
		f(&b, r, n.spanOf(i, i+sz))
		i += sz
	}
	return b.result()
}
