package generate

import (
	"strings"
	"unicode/utf8"
)

// Decoder turns token ids into text (hf/tokenizer's Tokenizer is one).
type Decoder interface {
	Decode(ids []int, skipSpecial bool) (string, error)
}

// TextStream turns generated tokens into text as they come, without splitting a
// character: a token that ends inside a multi-byte character (byte-fallback and
// byte-level vocabularies spell rare characters over several tokens) yields no text
// until the character is complete. Each token is decoded after the tokens before it
// (the last few of the prompt at first), so that the spaces decoders add or strip at
// the start of a text (SentencePiece's "▁", a Strip decoder) come out as they do when
// the whole sequence is decoded. Special tokens are skipped.
type TextStream struct {
	dec     Decoder
	ctx     []int  // tokens already emitted (the last few)
	base    string // their text
	pending []int  // tokens not emitted yet
}

// streamContext is how many emitted tokens a new one is decoded after.
const streamContext = 4

// maxPending bounds how long an incomplete character is waited for: UTF-8 characters
// have at most 4 bytes, and byte-fallback spells each with one token.
const maxPending = 4

// NewTextStream starts a stream whose text continues after the tokens context (the
// prompt; only its last few tokens are used).
func NewTextStream(dec Decoder, context []int) (*TextStream, error) {
	t := &TextStream{dec: dec}
	if err := t.setContext(context); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *TextStream) setContext(ids []int) error {
	if len(ids) > streamContext {
		ids = ids[len(ids)-streamContext:]
	}
	t.ctx = append([]int(nil), ids...)
	base, err := t.dec.Decode(t.ctx, true)
	t.base = base
	return err
}

// Add takes the next generated token and returns the text it completes ("" while a
// character is incomplete).
func (t *TextStream) Add(id int) (string, error) {
	t.pending = append(t.pending, id)
	text, err := t.text()
	if err != nil {
		return "", err
	}
	if strings.HasSuffix(text, string(utf8.RuneError)) && len(t.pending) < maxPending {
		return "", nil
	}
	return text, t.emitted()
}

// Flush returns the text of the tokens still pending (an incomplete character
// decodes as U+FFFD).
func (t *TextStream) Flush() (string, error) {
	if len(t.pending) == 0 {
		return "", nil
	}
	text, err := t.text()
	if err != nil {
		return "", err
	}
	return text, t.emitted()
}

// text is the text of the pending tokens, decoded after the context.
func (t *TextStream) text() (string, error) {
	all := append(append(make([]int, 0, len(t.ctx)+len(t.pending)), t.ctx...), t.pending...)
	full, err := t.dec.Decode(all, true)
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(full, t.base) {
		return full[len(t.base):], nil
	}
	// The context's text changed with what followed (a decoder that merges across
	// tokens): decode the new tokens alone.
	return t.dec.Decode(t.pending, true)
}

// emitted moves the pending tokens into the context.
func (t *TextStream) emitted() error {
	ids := append(t.ctx, t.pending...)
	t.pending = t.pending[:0]
	return t.setContext(ids)
}
