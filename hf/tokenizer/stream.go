package tokenizer

import (
	"fmt"
	"runtime"
	"sync"
	"unicode"
	"unicode/utf8"
)

// DefaultPieceBytes is the piece size EncodeStream uses when given 0.
const DefaultPieceBytes = 16 << 10

// EncodeStream tokenizes a long text piece by piece, so that the tokenizer's working
// memory does not grow with the text (about 100 bytes per input byte when a whole
// document is encoded at once), and fn receives each piece's ids in order, without
// special tokens, until it returns false. The text is cut into pieces of about
// pieceBytes (0: DefaultPieceBytes) just before a space that follows a non-space
// character and precedes one; pieces are encoded on up to GOMAXPROCS goroutines. Each
// piece is encoded as the part of the text it is: what a normalizer or pre-tokenizer does
// only at the start of an input (Prepend, Strip on the left, Metaspace's first-piece
// replacement) is done for the first piece only, and Strip on the right for the last.
// So for the common families (ByteLevel/GPT-2 and Llama-3 patterns, Metaspace, Llama-2's
// Prepend and Replace normalizers, BERT, Unigram) the ids are those of encoding the
// whole text at once (checked against every reference tokenizer of this package's
// tests); a stretch of pieceBytes with no such space is cut at a character boundary,
// which can change the tokens there. Truncation and padding settings do not apply. The
// tokenizer may be used concurrently meanwhile.
func (t *Tokenizer) EncodeStream(text string, pieceBytes int, fn func(ids []int) bool) error {
	if pieceBytes <= 0 {
		pieceBytes = DefaultPieceBytes
	}
	workers := runtime.GOMAXPROCS(0)
	type result struct {
		ids []int
		err error
	}
	type piece struct {
		start, end int
		done       chan result
	}
	pieces := make(chan *piece, 2*workers) // in text order, at most 2*workers ahead
	stop := make(chan struct{})
	var wg sync.WaitGroup
	work := make(chan *piece)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				nz := continuation(t.normalizer, p.start == 0, p.end == len(text))
				enc, err := t.encodeWith(text[p.start:p.end], 0, p.start, nz, 0, false)
				if err != nil {
					p.done <- result{err: fmt.Errorf("tokenizer: bytes %d-%d: %w", p.start, p.end, err)}
					continue
				}
				p.done <- result{ids: enc.IDs}
			}
		}()
	}
	go func() {
		defer close(pieces)
		defer close(work)
		for start := 0; start < len(text); {
			p := &piece{start: start, end: cutPoint(text, start, pieceBytes), done: make(chan result, 1)}
			select {
			case pieces <- p:
			case <-stop:
				return
			}
			work <- p // every piece in pieces is encoded, so that draining it ends
			start = p.end
		}
	}()
	var err error
	for p := range pieces {
		r := <-p.done
		if r.err != nil {
			err = r.err
			break
		}
		if !fn(r.ids) {
			break
		}
	}
	close(stop)
	for p := range pieces { // let the producer and workers finish
		<-p.done
	}
	wg.Wait()
	return err
}

// cutPoint returns the end of the piece that starts at start: len(text) when the rest
// is short, else the last position p in (start+n/2, start+n] where text[p] is a space
// with a non-space before and after it, else the first such position up to start+2n,
// else a rune boundary near start+n.
func cutPoint(text string, start, n int) int {
	if len(text)-start <= n {
		return len(text)
	}
	ok := func(p int) bool {
		if p <= start || p+1 >= len(text) || text[p] != ' ' {
			return false
		}
		r, _ := utf8.DecodeLastRuneInString(text[:p])
		q, _ := utf8.DecodeRuneInString(text[p+1:])
		return !unicode.IsSpace(r) && !unicode.IsSpace(q)
	}
	limit := start + n
	for p := limit; p > start+n/2; p-- {
		if ok(p) {
			return p
		}
	}
	for p := limit; p < len(text) && p < limit+n; p++ {
		if ok(p) {
			return p
		}
	}
	p := limit
	for p > start+1 && !utf8.RuneStart(text[p]) {
		p--
	}
	return p
}

// continuation returns nz as it applies to a piece of a longer input: Prepend and
// Strip-left only when the piece is the first, Strip-right only when it is the last.
func continuation(nz normalizer, first, last bool) normalizer {
	if first && last {
		return nz
	}
	switch x := nz.(type) {
	case prependNormalizer:
		if !first {
			return nil
		}
	case stripNormalizer:
		x.left = x.left && first
		x.right = x.right && last
		return x
	case seqNormalizer:
		out := make(seqNormalizer, 0, len(x))
		for _, y := range x {
			if z := continuation(y, first, last); z != nil {
				out = append(out, z)
			}
		}
		return out
	}
	return nz
}

// SpecialAffixes returns the special tokens the post-processor puts before and after a
// single sequence (Llama: [<s>] and none; RoBERTa: [<s>] and [</s>]), so that a text
// encoded with EncodeStream can be given them: prefix + pieces + suffix equals
// Encode(text, true) when no truncation applies.
func (t *Tokenizer) SpecialAffixes() (prefix, suffix []int, err error) {
	const probe = "a"
	plain, err := t.Encode(probe, false)
	if err != nil {
		return nil, nil, err
	}
	full, err := t.Encode(probe, true)
	if err != nil {
		return nil, nil, err
	}
	n := len(plain.IDs)
	for i := 0; i+n <= len(full.IDs); i++ {
		match := true
		for j, id := range plain.IDs {
			match = match && full.IDs[i+j] == id
		}
		if match {
			return append([]int(nil), full.IDs[:i]...), append([]int(nil), full.IDs[i+n:]...), nil
		}
	}
	return nil, nil, fmt.Errorf("tokenizer: the post-processor changes the tokens of %q (%v -> %v): cannot tell its special tokens apart", probe, plain.IDs, full.IDs)
}
