// Package tokenizer reads Hugging Face tokenizer.json files and encodes and
// decodes text exactly as the Hugging Face tokenizers library (0.2x) does,
// in pure Go.
//
// Supported components: models BPE (merges as "a b" strings or ["a","b"]
// pairs, byte_fallback, unk_token, fuse_unk, ignore_merges, dropout,
// continuing_subword_prefix, end_of_word_suffix), WordPiece, WordLevel and
// Unigram (unk_id, byte_fallback);
// normalizers Sequence, Prepend, Append, Replace, NFC, NFD, NFKC, NFKD,
// Lowercase, Strip, StripAccents, BertNormalizer, ByteLevel, Nmt;
// pre-tokenizers ByteLevel, Metaspace, Split, Digits, Whitespace,
// WhitespaceSplit, Punctuation, BertPreTokenizer, CharDelimiterSplit,
// Sequence; post-processors TemplateProcessing, RobertaProcessing,
// BertProcessing, ByteLevel, Sequence; decoders ByteLevel, Metaspace,
// Replace, ByteFallback, Fuse, Strip, WordPiece, BPEDecoder, Sequence.
// The Precompiled normalizer (a SentencePiece charsmap, used by T5, ALBERT
// and XLM-R files) and the UnicodeScripts pre-tokenizer are not supported:
// loading a file that uses them (or any unknown type) returns an error
// naming the type and its JSON path.
//
// Outputs (ids, tokens, offsets, word ids, type ids, masks, truncation with
// its overflowing pieces, padding) match tokenizers 0.23.2; see the reference
// tests in this package. (The Append normalizer, newer than 0.23.2, is
// implemented but has no reference to check against.)
//
// A Tokenizer is safe for concurrent use by several goroutines once built;
// SetTruncation and SetPadding must not race with encoding.
//
// Offsets are byte offsets into the input string (Hugging Face's Python API
// reports character offsets).
//
// Character classes of the pre-tokenizers (\p{L}, \p{N}, \p{P}, \p{S}, \p{M},
// scripts, \d and \w in Split patterns; letters and digits of the ByteLevel,
// Llama-3 and Digits splits; Lowercase) follow Unicode 16.0, as Hugging Face
// tokenizers does, from generated tables (unicode16_tables.go, made by
// scripts/gen-unicode-tables.sh); Go's unicode package is Unicode 15.0.
package tokenizer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// Tokenizer is a loaded tokenizer.json.
type Tokenizer struct {
	normalizer normalizer
	pre        preTokenizer
	model      model
	post       postProcessor
	decoder    decoder
	added      *addedVocab
	truncation *Truncation
	padding    *Padding

	unkToken  string
	bos, eos  int    // -1 when unknown
	modelName string // "BPE", "WordPiece", "WordLevel" or "Unigram"
}

// Option configures a Tokenizer at load time.
type Option func(*loadOptions)

type loadOptions struct {
	truncation   *Truncation
	setTrunc     bool
	padding      *Padding
	setPad       bool
	cacheSize    int
	cacheSizeSet bool
}

// WithTruncation overrides tokenizer.json's "truncation" (nil disables it).
func WithTruncation(t *Truncation) Option {
	return func(o *loadOptions) { o.truncation, o.setTrunc = t, true }
}

// WithPadding overrides tokenizer.json's "padding" (nil disables it).
func WithPadding(p *Padding) Option {
	return func(o *loadOptions) { o.padding, o.setPad = p, true }
}

// WithCacheSize sets the BPE word-cache capacity (default 10000 words, as
// in HF; 0 or negative disables the cache). Each of the two caches (plain
// and byte-level words) holds up to n words and stops admitting new ones
// when full.
func WithCacheSize(n int) Option {
	return func(o *loadOptions) { o.cacheSize, o.cacheSizeSet = n, true }
}

// Load reads a tokenizer from path, which is either a tokenizer.json file or
// a directory containing one.
func Load(path string, opts ...Option) (*Tokenizer, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if st.IsDir() {
		path = filepath.Join(path, "tokenizer.json")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	t, err := FromJSON(data, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return t, nil
}

// SetTruncation sets (nil: clears) truncation. Not safe while encoding.
func (t *Tokenizer) SetTruncation(tr *Truncation) { t.truncation = tr }

// SetPadding sets (nil: clears) padding. Not safe while encoding.
func (t *Tokenizer) SetPadding(p *Padding) { t.padding = p }

// Truncation returns the truncation settings, or nil.
func (t *Tokenizer) Truncation() *Truncation { return t.truncation }

// Padding returns the padding settings, or nil.
func (t *Tokenizer) Padding() *Padding { return t.padding }

// ModelType is the model's type in tokenizer.json: "BPE", "WordPiece",
// "WordLevel" or "Unigram".
func (t *Tokenizer) ModelType() string { return t.modelName }

// AddedTokens returns the added tokens, in tokenizer.json order.
func (t *Tokenizer) AddedTokens() []AddedToken {
	out := make([]AddedToken, len(t.added.tokens))
	for i, a := range t.added.tokens {
		out[i] = *a
	}
	return out
}

// TokenToID returns the id of a token (added tokens first, then the model).
func (t *Tokenizer) TokenToID(tok string) (int, bool) {
	if a, ok := t.added.byContent[tok]; ok {
		return a.ID, true
	}
	return t.model.tokenToID(tok)
}

// IDToToken returns the token string of an id.
func (t *Tokenizer) IDToToken(id int) (string, bool) {
	if a, ok := t.added.byID[id]; ok {
		return a.Content, true
	}
	return t.model.idToToken(id)
}

// VocabSize is the largest id (model vocabulary or added token) plus one:
// the row count of an embedding table indexed by these ids. For the usual
// contiguous vocabularies it equals Hugging Face's len(tokenizer).
func (t *Tokenizer) VocabSize() int {
	n := t.model.size()
	for id := range t.added.byID {
		n = max(n, id+1)
	}
	return n
}

// BOS is the beginning-of-sequence id (from the post-processor, else a
// special added token named like <s>, <|begin_of_text|>, <bos>, [CLS]), or -1.
func (t *Tokenizer) BOS() int { return t.bos }

// EOS is the end-of-sequence id (from the post-processor, else a special
// added token named like </s>, <|end_of_text|>, <|endoftext|>, <eos>, [SEP]),
// or -1.
func (t *Tokenizer) EOS() int { return t.eos }

// PAD is the padding id: the padding settings' PadID when padding is set,
// else a special added token named like <pad>, [PAD], <|pad|>, or -1.
func (t *Tokenizer) PAD() int {
	if t.padding != nil {
		return t.padding.PadID
	}
	return t.findSpecial("<pad>", "[PAD]", "<|pad|>", "<|padding|>", "<|finetune_right_pad_id|>")
}

// UNK is the model's unknown-token id, or -1.
func (t *Tokenizer) UNK() int {
	if t.unkToken == "" {
		return -1
	}
	if id, ok := t.TokenToID(t.unkToken); ok {
		return id
	}
	return -1
}

func (t *Tokenizer) findSpecial(names ...string) int {
	for _, n := range names {
		if a, ok := t.added.byContent[n]; ok {
			return a.ID
		}
	}
	return -1
}

// IsSpecial reports whether id is a special added token.
func (t *Tokenizer) IsSpecial(id int) bool {
	a, ok := t.added.byID[id]
	return ok && a.Special
}

// rtok is a token found by encodeSingle: id, original byte range, word
// index and, for added tokens and Unigram unknowns, the matched text (added
// is true; else the token string is the vocab entry).
type rtok struct {
	id, start, end, word int32
	text                 string
	added                bool
}

// encState is per-call scratch space, pooled.
type encState struct {
	toks   []mtoken
	rtoks  []rtok
	pieces []nstr
}

var encPool = sync.Pool{New: func() any { return new(encState) }}

// tokenizeByteLevel tokenizes a pending byte-level piece with the model.
func (t *Tokenizer) tokenizeByteLevel(dst []mtoken, raw string) ([]mtoken, error) {
	if bm, ok := t.model.(*bpeModel); ok {
		return bm.tokenizeByteLevel(dst, raw)
	}
	mapped := string(appendByteLevel(nil, raw))
	n0 := len(dst)
	dst, err := t.model.tokenize(dst, mapped)
	if err == nil {
		mappedToRaw(dst[n0:], mapped)
	}
	return dst, err
}

// wordBudget is how many tokens encodeSingle must produce at least when
// truncation is on: HF 0.23 stops tokenizing once the words it has
// tokenized (from the start, or from the end for left truncation) hold
// max_length tokens; what is cut beyond that never reaches the overflow.
func (t *Tokenizer) wordBudget() (int, bool) {
	if t.truncation == nil || t.truncation.MaxLength <= 0 {
		return 0, false
	}
	return t.truncation.MaxLength, t.truncation.Direction == Left
}

// encodeSingle tokenizes one input without post-processing.
func (t *Tokenizer) encodeSingle(text string, typeID int) (*Encoding, error) {
	budget, fromEnd := t.wordBudget()
	return t.encodeWith(text, typeID, 0, t.normalizer, budget, fromEnd)
}

// encodeWith is encodeSingle for text that starts base bytes into a longer input
// (offsets count from the input's start; at base > 0 Metaspace adds no first-piece
// replacement), with normalizer nz and a word budget (0: none).
func (t *Tokenizer) encodeWith(text string, typeID, base int, nz normalizer, budget int, fromEnd bool) (*Encoding, error) {
	st := encPool.Get().(*encState)
	defer encPool.Put(st)
	segs := t.added.extract(newNstr(text, base), nz)
	if want := len(text)/2 + 16; cap(st.rtoks) < want {
		st.rtoks = make([]rtok, 0, want)
	}
	rt := st.rtoks[:0]
	toks := st.toks[:0]
	word := int32(0)
	var one [1]nstr
	for _, sg := range segs {
		if budget > 0 && !fromEnd && len(rt) >= budget {
			break
		}
		if sg.tok != nil {
			sp := sg.n.spanOf(0, len(sg.n.s))
			rt = append(rt, rtok{id: int32(sg.tok.ID), start: sp.start, end: sp.end, word: word, text: sg.n.s, added: true})
			word++
			continue
		}
		one[0] = sg.n
		pieces := one[:]
		if t.pre != nil {
			st.pieces = t.pre.preTokenize(st.pieces[:0], pieces)
			pieces = st.pieces
		}
		for _, p := range pieces {
			if budget > 0 && !fromEnd && len(rt) >= budget {
				break
			}
			var err error
			if p.bl {
				toks, err = t.tokenizeByteLevel(toks[:0], p.s)
			} else {
				toks, err = t.model.tokenize(toks[:0], p.s)
			}
			if err != nil {
				st.toks, st.rtoks = toks, rt
				return nil, fmt.Errorf("tokenizer: encoding %q: %w", p.s, err)
			}
			for _, tk := range toks {
				sp := p.spanOf(int(tk.start), int(tk.end))
				r := rtok{id: tk.id, start: sp.start, end: sp.end, word: word}
				if tk.raw && !p.bl {
					r.text, r.added = p.s[tk.start:tk.end], true
				}
				rt = append(rt, r)
			}
			word++
		}
	}
	st.toks, st.rtoks = toks, rt
	if budget > 0 && fromEnd && len(rt) > budget {
		// Keep the last words holding at least budget tokens.
		i := len(rt)
		for i > 0 && len(rt)-i < budget {
			w := rt[i-1].word
			for i > 0 && rt[i-1].word == w {
				i--
			}
		}
		rt = rt[i:]
	}
	extra := 0
	if t.post != nil {
		extra = t.post.addedTokens(false)
	}
	enc := newEncoding(len(rt), extra)
	enc.text = text
	for i, r := range rt {
		enc.IDs[i] = int(r.id)
		enc.TypeIDs[i] = typeID
		if r.added {
			enc.Tokens[i] = r.text
		} else {
			enc.Tokens[i], _ = t.model.idToToken(int(r.id))
		}
		enc.Offsets[i] = [2]int{int(r.start), int(r.end)}
		enc.WordIDs[i] = int(r.word)
		enc.AttentionMask[i] = 1
	}
	return enc, nil
}

// postProcess truncates, adds special tokens and pads (HF post_process).
func (t *Tokenizer) postProcess(enc, pair *Encoding, addSpecial bool) (*Encoding, error) {
	if t.truncation != nil {
		tr := *t.truncation
		if addSpecial && t.post != nil {
			n := t.post.addedTokens(pair != nil)
			if n > 0 {
				if tr.MaxLength < n {
					return nil, fmt.Errorf("tokenizer: truncation max length %d is smaller than the %d special tokens", tr.MaxLength, n)
				}
				tr.MaxLength -= n
			}
		}
		if err := truncatePair(enc, pair, tr); err != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
	}
	encs := []*Encoding{enc}
	if pair != nil {
		encs = append(encs, pair)
	}
	var out *Encoding
	if t.post != nil {
		res, err := t.post.processEncodings(encs, addSpecial)
		if err != nil {
			return nil, err
		}
		out = mergeEncodings(res)
	} else {
		out = defaultProcess(encs)
	}
	if t.padding != nil {
		padAll([]*Encoding{out}, t.padding)
	}
	return out, nil
}

// Encode tokenizes text; addSpecial adds the post-processor's special tokens
// (e.g. <s> for Llama, <s> … </s> for RoBERTa). Truncation and padding apply
// when configured.
func (t *Tokenizer) Encode(text string, addSpecial bool) (*Encoding, error) {
	enc, err := t.encodeSingle(text, 0)
	if err != nil {
		return nil, err
	}
	return t.postProcess(enc, nil, addSpecial)
}

// EncodePair tokenizes a pair of inputs (e.g. premise and hypothesis).
func (t *Tokenizer) EncodePair(a, b string, addSpecial bool) (*Encoding, error) {
	ea, err := t.encodeSingle(a, 0)
	if err != nil {
		return nil, err
	}
	eb, err := t.encodeSingle(b, 1)
	if err != nil {
		return nil, err
	}
	return t.postProcess(ea, eb, addSpecial)
}

// EncodeIDs is Encode returning only the ids.
func (t *Tokenizer) EncodeIDs(text string, addSpecial bool) ([]int, error) {
	e, err := t.Encode(text, addSpecial)
	if err != nil {
		return nil, err
	}
	return e.IDs, nil
}

// parallel runs f(i) for i in [0, n) on up to GOMAXPROCS goroutines and
// returns the first error.
func parallel(n int, f func(i int) error) error {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for i := 0; i < n; i++ {
			if err := f(i); err != nil {
				return err
			}
		}
		return nil
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  int
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := first != nil
				mu.Unlock()
				if i >= n || stop {
					return
				}
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("tokenizer: batch item %d: %w", i, err)
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// EncodeBatch encodes texts in parallel; with padding set, the batch is
// padded together (to its longest encoding for PadBatchLongest).
func (t *Tokenizer) EncodeBatch(texts []string, addSpecial bool) ([]*Encoding, error) {
	out := make([]*Encoding, len(texts))
	err := parallel(len(texts), func(i int) error {
		e, err := t.Encode(texts[i], addSpecial)
		out[i] = e
		return err
	})
	if err != nil {
		return nil, err
	}
	padAll(out, t.padding)
	return out, nil
}

// EncodePairBatch encodes pairs (a[i], b[i]) in parallel, padding as EncodeBatch.
func (t *Tokenizer) EncodePairBatch(a, b []string, addSpecial bool) ([]*Encoding, error) {
	if len(a) != len(b) {
		return nil, fmt.Errorf("tokenizer: EncodePairBatch got %d first and %d second inputs", len(a), len(b))
	}
	out := make([]*Encoding, len(a))
	err := parallel(len(a), func(i int) error {
		e, err := t.EncodePair(a[i], b[i], addSpecial)
		out[i] = e
		return err
	})
	if err != nil {
		return nil, err
	}
	padAll(out, t.padding)
	return out, nil
}

// ErrUnknownID is returned (wrapped) by Decode for ids outside the vocabulary.
var ErrUnknownID = errors.New("tokenizer: unknown token id")

// Decode turns ids back into text; skipSpecial drops special added tokens.
// Unlike Hugging Face, which silently skips ids it does not know, an id
// outside the vocabulary is an error.
func (t *Tokenizer) Decode(ids []int, skipSpecial bool) (string, error) {
	toks := make([]string, 0, len(ids))
	for _, id := range ids {
		if a, ok := t.added.byID[id]; ok {
			if skipSpecial && a.Special {
				continue
			}
			toks = append(toks, a.Content)
			continue
		}
		tok, ok := t.model.idToToken(id)
		if !ok {
			return "", fmt.Errorf("%w %d (vocabulary size %d)", ErrUnknownID, id, t.VocabSize())
		}
		if skipSpecial {
			if a, ok := t.added.byContent[tok]; ok && a.Special {
				continue
			}
		}
		toks = append(toks, tok)
	}
	if t.decoder == nil {
		return strings.Join(toks, " "), nil
	}
	return strings.Join(t.decoder.decodeChain(toks), ""), nil
}

// DecodeBatch decodes several id sequences in parallel.
func (t *Tokenizer) DecodeBatch(ids [][]int, skipSpecial bool) ([]string, error) {
	out := make([]string, len(ids))
	err := parallel(len(ids), func(i int) error {
		s, err := t.Decode(ids[i], skipSpecial)
		out[i] = s
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
