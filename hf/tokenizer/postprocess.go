package tokenizer

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// postProcessor adds special tokens and sets type ids (HF PostProcessor).
type postProcessor interface {
	// addedTokens is how many tokens process adds with addSpecial.
	addedTokens(isPair bool) int
	// processEncodings transforms the per-input encodings; the tokenizer
	// concatenates what it returns.
	processEncodings(encs []*Encoding, addSpecial bool) ([]*Encoding, error)
}

// concatEncodings concatenates the tokens of encs (not their overflowing).
func concatEncodings(encs ...*Encoding) *Encoding {
	total := 0
	for _, e := range encs {
		total += e.Len()
	}
	out := newEncoding(0, total)
	for _, e := range encs {
		out.appendEnc(e)
	}
	return out
}

// mergeEncodings concatenates an encoding and its optional pair. Overflowing
// pieces combine as in HF's Encoding::merge_with: each overflow a of the
// first with the pair's main part and with each overflow b of the pair, then
// the first's main part with each b.
func mergeEncodings(encs []*Encoding) *Encoding {
	if len(encs) == 1 {
		return encs[0]
	}
	a, b := encs[0], encs[1]
	out := concatEncodings(a, b)
	for _, ao := range a.Overflowing {
		out.Overflowing = append(out.Overflowing, concatEncodings(ao, b))
		for _, bo := range b.Overflowing {
			out.Overflowing = append(out.Overflowing, concatEncodings(ao, bo))
		}
	}
	for _, bo := range b.Overflowing {
		out.Overflowing = append(out.Overflowing, concatEncodings(a, bo))
	}
	return out
}

// defaultProcess is what HF does without a post-processor.
func defaultProcess(encs []*Encoding) *Encoding {
	if len(encs) == 2 {
		encs[0].setSequenceID(0)
		encs[1].setSequenceID(1)
	}
	return mergeEncodings(encs)
}

// specialPiece is one special token of a template (may expand to several ids).
type specialPiece struct {
	ids    []int
	tokens []string
}

type templatePiece struct {
	isSeq  bool
	seq    int    // 0 for A, 1 for B
	name   string // special token name
	typeID int
}

// templateProcessor is HF's TemplateProcessing.
type templateProcessor struct {
	single, pair []templatePiece
	specials     map[string]specialPiece
}

func (t *templateProcessor) addedTokens(isPair bool) int {
	tmpl := t.single
	if isPair {
		tmpl = t.pair
	}
	n := 0
	for _, p := range tmpl {
		if !p.isSeq {
			n += len(t.specials[p.name].ids)
		}
	}
	return n
}

// apply builds tmpl around encs. retype sets the sequences' type ids to the
// template's; HF does not do that for overflowing pieces, which keep the
// type ids they were encoded with.
func (t *templateProcessor) apply(tmpl []templatePiece, encs []*Encoding, addSpecial, retype bool) (*Encoding, error) {
	total := 0
	for _, p := range tmpl {
		if p.isSeq && p.seq < len(encs) {
			total += encs[p.seq].Len()
		} else if !p.isSeq {
			total += len(t.specials[p.name].ids)
		}
	}
	out := newEncoding(0, total)
	for _, p := range tmpl {
		if p.isSeq {
			if p.seq >= len(encs) {
				return nil, fmt.Errorf("tokenizer: template uses sequence %c but only %d input(s) given", 'A'+rune(p.seq), len(encs))
			}
			e := encs[p.seq]
			if retype {
				e.setTypeIDs(p.typeID)
			}
			e.setSequenceID(p.seq)
			out.appendEnc(e)
			continue
		}
		if !addSpecial {
			continue
		}
		sp := t.specials[p.name]
		for k, id := range sp.ids {
			out.push(id, p.typeID, sp.tokens[k], [2]int{0, 0}, -1, -1, 1, 1)
		}
	}
	return out, nil
}

// applyInPlace applies a template with one sequence piece (A) to e, adding
// the special tokens around it in place.
func (t *templateProcessor) applyInPlace(tmpl []templatePiece, e *Encoding, addSpecial, retype bool) {
	seqAt := -1
	for i, p := range tmpl {
		if p.isSeq {
			seqAt = i
		}
	}
	if retype {
		e.setTypeIDs(tmpl[seqAt].typeID)
	}
	e.setSequenceID(0)
	if !addSpecial {
		return
	}
	front := 0
	for _, p := range tmpl[:seqAt] {
		front += len(t.specials[p.name].ids)
	}
	e.insertFront(front)
	k := 0
	for _, p := range tmpl[:seqAt] {
		sp := t.specials[p.name]
		for j, id := range sp.ids {
			e.set(k, id, p.typeID, sp.tokens[j], [2]int{}, -1, -1, 1, 1)
			k++
		}
	}
	for _, p := range tmpl[seqAt+1:] {
		sp := t.specials[p.name]
		for j, id := range sp.ids {
			e.push(id, p.typeID, sp.tokens[j], [2]int{}, -1, -1, 1, 1)
		}
	}
}

func (t *templateProcessor) processEncodings(encs []*Encoding, addSpecial bool) ([]*Encoding, error) {
	if len(encs) == 1 {
		nseq, onlyA := 0, true
		for _, p := range t.single {
			if p.isSeq {
				nseq++
				onlyA = onlyA && p.seq == 0
			}
		}
		if nseq == 1 && onlyA {
			e := encs[0]
			for _, o := range e.Overflowing {
				t.applyInPlace(t.single, o, addSpecial, false)
			}
			t.applyInPlace(t.single, e, addSpecial, true)
			return encs, nil
		}
	}
	tmpl := t.single
	if len(encs) == 2 {
		tmpl = t.pair
		if tmpl == nil {
			return nil, fmt.Errorf("tokenizer: TemplateProcessing has no pair template")
		}
	}
	main, err := t.apply(tmpl, encs, addSpecial, true)
	if err != nil {
		return nil, err
	}
	// Overflowing pieces combine as in mergeEncodings.
	apply := func(parts ...*Encoding) error {
		cp := make([]*Encoding, len(parts))
		for i, p := range parts {
			cp[i] = p.sub(0, p.Len())
		}
		oe, err := t.apply(tmpl, cp, addSpecial, false)
		if err == nil {
			main.Overflowing = append(main.Overflowing, oe)
		}
		return err
	}
	if len(encs) == 1 {
		for _, o := range encs[0].Overflowing {
			if err := apply(o); err != nil {
				return nil, err
			}
		}
		return []*Encoding{main}, nil
	}
	a, b := encs[0], encs[1]
	for _, ao := range a.Overflowing {
		if err := apply(ao, b); err != nil {
			return nil, err
		}
		for _, bo := range b.Overflowing {
			if err := apply(ao, bo); err != nil {
				return nil, err
			}
		}
	}
	for _, bo := range b.Overflowing {
		if err := apply(a, bo); err != nil {
			return nil, err
		}
	}
	return []*Encoding{main}, nil
}

// processOffsets trims the offsets of tokens that start or end with
// (byte-level) spaces (HF byte_level::process_offsets).
func processOffsets(e *Encoding, addPrefixSpace bool) {
	isSp := func(r rune) bool { return r == 'Ġ' || unicode.IsSpace(r) }
	for i, tok := range e.Tokens {
		off := e.Offsets[i]
		lead, trail := 0, 0
		k := 0
		for k < len(tok) {
			r, sz := utf8.DecodeRuneInString(tok[k:])
			if !isSp(r) {
				break
			}
			lead++
			k += sz
		}
		for k = len(tok); k > 0; {
			r, sz := utf8.DecodeLastRuneInString(tok[:k])
			if !isSp(r) {
				break
			}
			trail++
			k -= sz
		}
		// HF trims in characters (its Python/Node offsets are in chars):
		// step over whole chars of the input so that byte offsets stay on
		// char boundaries.
		if lead > 0 {
			if (i == 0 || off[0] == 0) && addPrefixSpace && lead == 1 {
				lead = 0
			}
			for ; lead > 0 && off[0] < off[1]; lead-- {
				off[0] += runeLenAt(e.text, off[0])
			}
			off[0] = min(off[0], off[1])
		}
		if trail > 0 && charsBefore(e.text, off[1], trail) {
			for ; trail > 0 && off[1] > off[0]; trail-- {
				off[1] -= runeLenBefore(e.text, off[1])
			}
			off[1] = max(off[1], off[0])
		}
		e.Offsets[i] = off
	}
	for _, o := range e.Overflowing {
		processOffsets(o, addPrefixSpace)
	}
}

// runeLenAt is the byte length of the char of s at byte i (1 outside s).
func runeLenAt(s string, i int) int {
	if i < 0 || i >= len(s) {
		return 1
	}
	_, sz := utf8.DecodeRuneInString(s[i:])
	return sz
}

// runeLenBefore is the byte length of the char of s ending at byte i.
func runeLenBefore(s string, i int) int {
	if i <= 0 || i > len(s) {
		return 1
	}
	_, sz := utf8.DecodeLastRuneInString(s[:i])
	return sz
}

// charsBefore reports whether s has at least n chars before byte i (HF's
// "offsets.1 >= trailing_spaces" in chars).
func charsBefore(s string, i, n int) bool {
	if i > len(s) {
		return i >= n
	}
	if i >= 4*n { // a char is at most 4 bytes
		return true
	}
	return utf8.RuneCountInString(s[:i]) >= n
}

// byteLevelPost is the ByteLevel post-processor: offset trimming only.
type byteLevelPost struct{ trimOffsets, addPrefixSpace bool }

func (byteLevelPost) addedTokens(bool) int { return 0 }

func (b byteLevelPost) processEncodings(encs []*Encoding, _ bool) ([]*Encoding, error) {
	if b.trimOffsets {
		for _, e := range encs {
			processOffsets(e, b.addPrefixSpace)
		}
	}
	if len(encs) == 2 {
		encs[0].setSequenceID(0)
		encs[1].setSequenceID(1)
	}
	return encs, nil
}

// clsSepProcessor covers RobertaProcessing and BertProcessing.
type clsSepProcessor struct {
	roberta        bool
	cls, sep       string
	clsID, sepID   int
	trimOffsets    bool
	addPrefixSpace bool
}

func (c *clsSepProcessor) addedTokens(isPair bool) int {
	switch {
	case !isPair:
		return 2
	case c.roberta:
		return 4
	}
	return 3
}

// wrap adds [CLS] … [SEP] (first input), </s> … </s> (RoBERTa second
// input) or … [SEP] (BERT second input) around e, in place.
func (c *clsSepProcessor) wrap(e *Encoding, first bool, seq int) *Encoding {
	typeID := 0
	if !first && !c.roberta {
		typeID = 1
	}
	e.setTypeIDs(typeID)
	e.setSequenceID(seq)
	switch {
	case first:
		e.insertFront(1)
		e.set(0, c.clsID, typeID, c.cls, [2]int{}, -1, -1, 1, 1)
	case c.roberta:
		e.insertFront(1)
		e.set(0, c.sepID, typeID, c.sep, [2]int{}, -1, -1, 1, 1)
	}
	e.push(c.sepID, typeID, c.sep, [2]int{}, -1, -1, 1, 1)
	for _, o := range e.Overflowing {
		c.wrap(o, first, seq)
	}
	return e
}

func (c *clsSepProcessor) processEncodings(encs []*Encoding, addSpecial bool) ([]*Encoding, error) {
	if c.roberta {
		for _, e := range encs {
			if c.trimOffsets {
				processOffsets(e, c.addPrefixSpace)
			}
			e.setTypeIDs(0)
		}
	}
	if !addSpecial {
		if len(encs) == 2 {
			encs[0].setSequenceID(0)
			encs[1].setSequenceID(1)
		}
		return encs, nil
	}
	out := make([]*Encoding, len(encs))
	for i, e := range encs {
		out[i] = c.wrap(e, i == 0, i)
	}
	return out, nil
}

// seqProcessor is HF's Sequence post-processor.
type seqProcessor []postProcessor

func (s seqProcessor) addedTokens(isPair bool) int {
	n := 0
	for _, p := range s {
		n += p.addedTokens(isPair)
	}
	return n
}

func (s seqProcessor) processEncodings(encs []*Encoding, addSpecial bool) ([]*Encoding, error) {
	var err error
	for _, p := range s {
		if encs, err = p.processEncodings(encs, addSpecial); err != nil {
			return nil, err
		}
	}
	return encs, nil
}
