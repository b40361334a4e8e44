package tokenizer

import (
	"errors"
	"fmt"
)

// Encoding is the result of encoding one input (or one pair of inputs).
// All slices have the same length, one entry per token.
type Encoding struct {
	IDs               []int    // token ids
	TypeIDs           []int    // segment (token type) ids
	Tokens            []string // token strings as in the vocabulary
	Offsets           [][2]int // byte range [start, end) of each token in its input text; {0,0} for added special/pad tokens
	WordIDs           []int    // index of the pre-tokenized word a token came from; -1 for special/pad tokens
	SequenceIDs       []int    // 0 for the first input, 1 for the pair; -1 for special/pad tokens
	SpecialTokensMask []int    // 1 for tokens added by post-processing or padding
	AttentionMask     []int    // 1 for real tokens, 0 for padding
	// Overflowing holds the pieces cut off by truncation, each with its own
	// special tokens (with a stride, consecutive windows share that many
	// tokens; for pairs, the combinations HF makes). As in HF 0.23, an input
	// is only tokenized word by word until it holds Truncation.MaxLength
	// tokens, so the overflow holds the rest of those words, not the rest of
	// the text. Nil when nothing was cut.
	Overflowing []*Encoding

	text string // the input the offsets point into (until post-processing)

	// base holds the full backing arrays when head free slots precede the
	// slices above, so that special tokens can be prepended without moving
	// the tokens (see newEncoding).
	base *encBase
	head int
}

type encBase struct {
	ints    []int // 6 arrays of c ints: ids, type ids, words, sequences, special, attention
	c       int
	tokens  []string
	offsets [][2]int
}

// newEncoding returns an encoding of n zeroed tokens with room to append
// extra more, and to prepend extra more (insertFront), without moving them.
func newEncoding(n, extra int) *Encoding {
	c := extra + n + extra
	ints := make([]int, 6*c)
	b := &encBase{ints: ints, c: c, tokens: make([]string, c), offsets: make([][2]int, c)}
	e := &Encoding{base: b, head: extra}
	e.reslice(extra, n)
	return e
}

// reslice points the slices at [start, start+n) of the base arrays.
func (e *Encoding) reslice(start, n int) {
	b := e.base
	sl := func(k int) []int { return b.ints[k*b.c+start : k*b.c+start+n : (k+1)*b.c] }
	e.IDs, e.TypeIDs, e.WordIDs, e.SequenceIDs = sl(0), sl(1), sl(2), sl(3)
	e.SpecialTokensMask, e.AttentionMask = sl(4), sl(5)
	e.Tokens = b.tokens[start : start+n : b.c]
	e.Offsets = b.offsets[start : start+n : b.c]
}

// ownsBase reports whether the slices still start at the base's head.
func (e *Encoding) ownsBase() bool {
	b := e.base
	return b != nil && len(e.IDs) > 0 && &e.IDs[0] == &b.ints[e.head] ||
		b != nil && len(e.IDs) == 0 && cap(e.IDs) == b.c-e.head
}

// insertFront returns s with k zero values inserted at the front, reusing
// its capacity when it can.
func insertFront[T any](s []T, k int) []T {
	var zero T
	for i := 0; i < k; i++ {
		s = append(s, zero)
	}
	copy(s[k:], s[:len(s)-k])
	for i := 0; i < k; i++ {
		s[i] = zero
	}
	return s
}

// insertFront makes room for k tokens at the front (zeroed).
func (e *Encoding) insertFront(k int) {
	if k == 0 {
		return
	}
	if k <= e.head && e.ownsBase() && len(e.Tokens) == len(e.IDs) {
		e.head -= k
		n := len(e.IDs) + k
		e.reslice(e.head, n)
		for i := 0; i < k; i++ {
			e.set(i, 0, 0, "", [2]int{}, 0, 0, 0, 0)
		}
		return
	}
	e.base = nil
	e.IDs = insertFront(e.IDs, k)
	e.TypeIDs = insertFront(e.TypeIDs, k)
	e.Tokens = insertFront(e.Tokens, k)
	e.Offsets = insertFront(e.Offsets, k)
	e.WordIDs = insertFront(e.WordIDs, k)
	e.SequenceIDs = insertFront(e.SequenceIDs, k)
	e.SpecialTokensMask = insertFront(e.SpecialTokensMask, k)
	e.AttentionMask = insertFront(e.AttentionMask, k)
}

// set writes token i.
func (e *Encoding) set(i, id, typeID int, tok string, off [2]int, word, seq, special, att int) {
	e.IDs[i], e.TypeIDs[i], e.Tokens[i], e.Offsets[i] = id, typeID, tok, off
	e.WordIDs[i], e.SequenceIDs[i], e.SpecialTokensMask[i], e.AttentionMask[i] = word, seq, special, att
}

// Len is the number of tokens.
func (e *Encoding) Len() int { return len(e.IDs) }

func (e *Encoding) push(id, typeID int, tok string, off [2]int, word, seq, special, att int) {
	e.IDs = append(e.IDs, id)
	e.TypeIDs = append(e.TypeIDs, typeID)
	e.Tokens = append(e.Tokens, tok)
	e.Offsets = append(e.Offsets, off)
	e.WordIDs = append(e.WordIDs, word)
	e.SequenceIDs = append(e.SequenceIDs, seq)
	e.SpecialTokensMask = append(e.SpecialTokensMask, special)
	e.AttentionMask = append(e.AttentionMask, att)
}

// appendEnc appends all tokens of o (not its overflowing pieces).
func (e *Encoding) appendEnc(o *Encoding) {
	e.IDs = append(e.IDs, o.IDs...)
	e.TypeIDs = append(e.TypeIDs, o.TypeIDs...)
	e.Tokens = append(e.Tokens, o.Tokens...)
	e.Offsets = append(e.Offsets, o.Offsets...)
	e.WordIDs = append(e.WordIDs, o.WordIDs...)
	e.SequenceIDs = append(e.SequenceIDs, o.SequenceIDs...)
	e.SpecialTokensMask = append(e.SpecialTokensMask, o.SpecialTokensMask...)
	e.AttentionMask = append(e.AttentionMask, o.AttentionMask...)
}

// sub returns a copy of tokens [a, b).
func (e *Encoding) sub(a, b int) *Encoding {
	c := func(x []int) []int { return append([]int(nil), x[a:b]...) }
	return &Encoding{
		IDs: c(e.IDs), TypeIDs: c(e.TypeIDs),
		Tokens:            append([]string(nil), e.Tokens[a:b]...),
		Offsets:           append([][2]int(nil), e.Offsets[a:b]...),
		WordIDs:           c(e.WordIDs),
		SequenceIDs:       c(e.SequenceIDs),
		SpecialTokensMask: c(e.SpecialTokensMask),
		AttentionMask:     c(e.AttentionMask),
		text:              e.text,
	}
}

func (e *Encoding) setTypeIDs(t int) {
	for i := range e.TypeIDs {
		e.TypeIDs[i] = t
	}
}

func (e *Encoding) setSequenceID(s int) {
	for i := range e.SequenceIDs {
		e.SequenceIDs[i] = s
	}
}

// Direction is the side truncation cuts from or padding is added to.
type Direction int

// Directions for Truncation and Padding.
const (
	Right Direction = iota
	Left
)

// TruncationStrategy says which input of a pair loses tokens.
type TruncationStrategy int

// Truncation strategies (HF TruncationStrategy).
const (
	LongestFirst TruncationStrategy = iota // cut the longer input first
	OnlyFirst                              // only cut the first input
	OnlySecond                             // only cut the second input
)

// Truncation configures truncation. MaxLength counts special tokens too.
// The zero value of the other fields is HF's default: longest_first, no
// stride, cut on the right.
type Truncation struct {
	MaxLength int
	Strategy  TruncationStrategy
	Stride    int // overlap between consecutive overflowing pieces
	Direction Direction
}

// PaddingStrategy says what length Padding pads to.
type PaddingStrategy int

// Padding strategies.
const (
	PadBatchLongest PaddingStrategy = iota // to the longest encoding of the batch
	PadFixed                               // to Padding.Length
)

// Padding configures padding. The zero value pads to the longest encoding of
// a batch, on the right, with id 0 and type id 0 (set PadToken and PadID to
// the tokenizer's pad token, see Tokenizer.PAD).
type Padding struct {
	Strategy        PaddingStrategy
	Length          int // for PadFixed
	Direction       Direction
	PadToMultipleOf int // 0 for none
	PadID           int
	PadTypeID       int
	PadToken        string
}

// truncate keeps maxLen tokens of e; the rest become overflowing windows
// (HF Encoding::truncate).
func (e *Encoding) truncate(maxLen, stride int, dir Direction) error {
	n := e.Len()
	if maxLen >= n {
		return nil
	}
	if maxLen == 0 {
		old := *e
		*e = Encoding{Overflowing: []*Encoding{&old}}
		return nil
	}
	if stride >= maxLen {
		return fmt.Errorf("stride %d must be smaller than the truncated length %d", stride, maxLen)
	}
	step := maxLen - stride
	var ranges [][2]int
	if dir == Right {
		for start := 0; start < n; start += step {
			stop := min(start+maxLen, n)
			ranges = append(ranges, [2]int{start, stop})
			if stop == n {
				break
			}
		}
	} else {
		for stop := n; stop > 0; stop -= step {
			start := max(stop-maxLen, 0)
			ranges = append(ranges, [2]int{start, stop})
			if start == 0 {
				break
			}
		}
	}
	parts := make([]*Encoding, len(ranges))
	for i, r := range ranges {
		parts[i] = e.sub(r[0], r[1])
	}
	*e = *parts[0]
	e.Overflowing = parts[1:]
	return nil
}

var errSequenceTooShort = errors.New("truncation: the sequence to truncate is shorter than what must be removed")

// truncatePair applies t to an encoding and its optional pair (HF
// truncate_encodings).
func truncatePair(enc, pair *Encoding, t Truncation) error {
	if t.MaxLength == 0 {
		if err := enc.truncate(0, t.Stride, t.Direction); err != nil {
			return err
		}
		if pair != nil {
			return pair.truncate(0, t.Stride, t.Direction)
		}
		return nil
	}
	total := enc.Len()
	if pair != nil {
		total += pair.Len()
	}
	if total <= t.MaxLength {
		return nil
	}
	toRemove := total - t.MaxLength
	switch t.Strategy {
	case LongestFirst:
		if pair == nil {
			return enc.truncate(total-toRemove, t.Stride, t.Direction)
		}
		n1, n2 := enc.Len(), pair.Len()
		swap := n1 > n2
		if swap {
			n1, n2 = n2, n1
		}
		if n1 > t.MaxLength {
			n2 = n1
		} else {
			n2 = max(n1, t.MaxLength-n1)
		}
		if n1+n2 > t.MaxLength {
			n1 = t.MaxLength / 2
			n2 = n1 + t.MaxLength%2
		}
		if swap {
			n1, n2 = n2, n1
		}
		if err := enc.truncate(n1, t.Stride, t.Direction); err != nil {
			return err
		}
		return pair.truncate(n2, t.Stride, t.Direction)
	case OnlyFirst, OnlySecond:
		target := enc
		if t.Strategy == OnlySecond {
			if pair == nil {
				return errors.New("truncation: only_second needs a pair of inputs")
			}
			target = pair
		}
		if target.Len() <= toRemove {
			return errSequenceTooShort
		}
		return target.truncate(target.Len()-toRemove, t.Stride, t.Direction)
	}
	return fmt.Errorf("truncation: unknown strategy %d", t.Strategy)
}

// pad pads e (and its overflowing pieces) to length n.
func (e *Encoding) pad(n int, p *Padding) {
	for _, o := range e.Overflowing {
		o.pad(n, p)
	}
	k := n - e.Len()
	if k <= 0 {
		return
	}
	pe := &Encoding{}
	for i := 0; i < k; i++ {
		pe.push(p.PadID, p.PadTypeID, p.PadToken, [2]int{0, 0}, -1, -1, 1, 0)
	}
	if p.Direction == Right {
		e.appendEnc(pe)
		return
	}
	pe.appendEnc(e)
	pe.Overflowing = e.Overflowing
	*e = *pe
}

// padAll pads a batch according to p.
func padAll(encs []*Encoding, p *Padding) {
	if p == nil || len(encs) == 0 {
		return
	}
	n := p.Length
	if p.Strategy == PadBatchLongest {
		n = 0
		for _, e := range encs {
			n = max(n, e.Len())
		}
	}
	if m := p.PadToMultipleOf; m > 0 && n%m != 0 {
		n += m - n%m
	}
	for _, e := range encs {
		e.pad(n, p)
	}
}
