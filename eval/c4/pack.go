package c4

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
)

// Source is a stream of documents with a seekable position; *Reader is one.
type Source interface {
	// Next returns the next document or io.EOF.
	Next() (Document, error)
	// Position returns the position of the document Next returns next.
	Position() Position
	// Seek makes the document at p the next one.
	Seek(p Position) error
}

// Split selects which documents a Packer uses.
type Split int

const (
	// SplitAll uses every document.
	SplitAll Split = iota
	// SplitTrain uses the documents not in the validation split.
	SplitTrain
	// SplitValidation uses the documents whose hash falls in the validation
	// fraction (see InValidation).
	SplitValidation
)

// String returns "all", "train" or "validation".
func (s Split) String() string {
	switch s {
	case SplitAll:
		return "all"
	case SplitTrain:
		return "train"
	case SplitValidation:
		return "validation"
	}
	return fmt.Sprintf("Split(%d)", int(s))
}

// InValidation reports whether a document with this text belongs to the
// validation split for the given fraction and seed: the 64-bit FNV-1a hash
// of the seed's 8 little-endian bytes followed by the text, passed through
// SplitMix64's finaliser and divided by 2^64, is below fraction. The assignment depends only on the text, so it is the
// same whatever the file order or sharding, and duplicate documents land on
// the same side.
func InValidation(text string, fraction float64, seed uint64) bool {
	if fraction <= 0 {
		return false
	}
	if fraction >= 1 {
		return true
	}
	h := fnv.New64a()
	var b [8]byte
	for i := range b {
		b[i] = byte(seed >> (8 * i))
	}
	h.Write(b[:])
	h.Write([]byte(text))
	// FNV's high bits mix poorly for texts that differ near their end, so
	// finish with SplitMix64's finaliser before comparing.
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return float64(x) < fraction*math.Exp2(64)
}

// PackOptions configures a Packer.
//
// The Packer concatenates the token sequences BOS ++ tokenize(text) ++ EOS of
// successive documents into one stream and cuts it into blocks of BlockLen
// tokens. Consecutive blocks share Overlap tokens: block k covers stream
// positions [k·(BlockLen−Overlap), k·(BlockLen−Overlap)+BlockLen). Blocks run
// across document boundaries; the final tokens that do not fill a block are
// dropped.
//
// Two common set-ups:
//   - nanoGPT style: BlockLen = T+1, Overlap = 1; inputs are block[:T] and
//     targets block[1:], and every stream token after the first is a target
//     exactly once.
//   - Hugging Face style (the model shifts labels itself, loss on
//     logits[:, :-1] against ids[:, 1:]): BlockLen = T, Overlap = 1 gives
//     every token after the first exactly one prediction; Overlap = 0 is
//     run_clm's group_texts, where the first token of each block is never
//     predicted.
type PackOptions struct {
	// BlockLen is the number of tokens per block; it must be positive.
	BlockLen int
	// Overlap is the number of tokens consecutive blocks share,
	// 0 <= Overlap < BlockLen.
	Overlap int
	// BOS and EOS are token ids inserted before and after each document
	// (for example EOS = []int{eosID}); nil inserts nothing.
	BOS, EOS []int
	// Split selects the documents used; Validation and Seed define the
	// split (see InValidation). With SplitAll they are ignored.
	Split Split
	// Validation is the fraction of documents in the validation split, in
	// (0, 1) when Split is SplitTrain or SplitValidation.
	Validation float64
	// Seed varies the split.
	Seed uint64
}

// State is a Packer's resumable position: the next block starts Offset
// tokens into the token sequence (BOS ++ tokens ++ EOS) of the document at
// Doc. It serialises to JSON for checkpoints.
type State struct {
	// Doc is the position of the document in which the next block starts.
	Doc Position `json:"doc"`
	// Offset is the token offset of the next block within that document.
	Offset int `json:"offset"`
	// Blocks counts the blocks returned so far.
	Blocks int64 `json:"blocks"`
	// Docs counts the documents of the split before the one at Doc.
	Docs int64 `json:"docs"`
}

// segment is the token sequence of one document in the window.
type segment struct {
	pos  Position
	toks []int
}

// Packer cuts a document stream into fixed-length token blocks. It is not
// safe for concurrent use.
type Packer struct {
	src      Source
	tokenize func(string) ([]int, error)
	opts     PackOptions

	segs   []segment // documents overlapping the next block, in order
	off    int       // offset of the next block in segs[0]
	blocks int64
	docs   int64
	// restore is set after Restore: the first document read must be at it.
	restore *Position
}

// NewPacker returns a Packer reading documents from src and tokenizing them
// with tokenize (without special tokens: the Packer adds PackOptions.BOS and
// EOS itself). The Packer copies the slices tokenize returns. It starts at
// src's current position.
func NewPacker(src Source, tokenize func(string) []int, opts PackOptions) (*Packer, error) {
	if tokenize == nil {
		return nil, errors.New("c4: NewPacker needs a tokenize function")
	}
	return NewPackerErr(src, func(s string) ([]int, error) { return tokenize(s), nil }, opts)
}

// NewPackerErr is NewPacker for a tokenize function that can fail, such as
// hf/tokenizer's (*Tokenizer).EncodeIDs(text, false); Next returns its
// errors wrapped with the document's file and line.
func NewPackerErr(src Source, tokenize func(string) ([]int, error), opts PackOptions) (*Packer, error) {
	if src == nil || tokenize == nil {
		return nil, errors.New("c4: NewPacker needs a source and a tokenize function")
	}
	if opts.BlockLen <= 0 {
		return nil, fmt.Errorf("c4: BlockLen %d must be positive", opts.BlockLen)
	}
	if opts.Overlap < 0 || opts.Overlap >= opts.BlockLen {
		return nil, fmt.Errorf("c4: Overlap %d must be in [0, BlockLen=%d)", opts.Overlap, opts.BlockLen)
	}
	switch opts.Split {
	case SplitAll:
	case SplitTrain, SplitValidation:
		if !(opts.Validation > 0 && opts.Validation < 1) {
			return nil, fmt.Errorf("c4: Validation fraction %v must be in (0, 1) for the %v split", opts.Validation, opts.Split)
		}
	default:
		return nil, fmt.Errorf("c4: unknown split %d", int(opts.Split))
	}
	opts.BOS = append([]int(nil), opts.BOS...)
	opts.EOS = append([]int(nil), opts.EOS...)
	return &Packer{src: src, tokenize: tokenize, opts: opts}, nil
}

func (p *Packer) keep(text string) bool {
	switch p.opts.Split {
	case SplitTrain:
		return !InValidation(text, p.opts.Validation, p.opts.Seed)
	case SplitValidation:
		return InValidation(text, p.opts.Validation, p.opts.Seed)
	}
	return true
}

func (p *Packer) avail() int {
	n := -p.off
	for _, s := range p.segs {
		n += len(s.toks)
	}
	return n
}

// fill reads documents until a block is available; io.EOF if the data ends.
func (p *Packer) fill() error {
	for p.avail() < p.opts.BlockLen {
		d, err := p.src.Next()
		if err != nil {
			return err
		}
		if !p.keep(d.Text) {
			continue
		}
		restoring := p.restore != nil
		if restoring {
			if d.Pos.File != p.restore.File || d.Pos.Doc != p.restore.Doc {
				return fmt.Errorf("c4: cannot restore: the state's document %d of %s is not in this split (different data or split options?)", p.restore.Doc, p.restore.Name)
			}
			p.restore = nil
		}
		p.docs++
		body, err := p.tokenize(d.Text)
		if err != nil {
			return fmt.Errorf("c4: tokenizing the document at %s:%d: %w", d.File, d.Line, err)
		}
		toks := make([]int, 0, len(p.opts.BOS)+len(body)+len(p.opts.EOS))
		toks = append(toks, p.opts.BOS...)
		toks = append(toks, body...)
		toks = append(toks, p.opts.EOS...)
		if restoring && p.off >= len(toks) {
			return fmt.Errorf("c4: cannot restore: offset %d beyond the %d tokens of the document at %s:%d (different tokenizer?)", p.off, len(toks), d.File, d.Line)
		}
		if len(toks) == 0 {
			continue
		}
		p.segs = append(p.segs, segment{pos: d.Pos, toks: toks})
	}
	return nil
}

// Next returns the next block of BlockLen tokens (a new slice the caller
// owns), or io.EOF when the documents left cannot fill one.
func (p *Packer) Next() ([]int, error) {
	if err := p.fill(); err != nil {
		return nil, err
	}
	block := make([]int, 0, p.opts.BlockLen)
	off := p.off
	for _, s := range p.segs {
		need := p.opts.BlockLen - len(block)
		if need == 0 {
			break
		}
		t := s.toks[off:]
		off = 0
		block = append(block, t[:min(need, len(t))]...)
	}
	// Advance past BlockLen-Overlap tokens.
	p.off += p.opts.BlockLen - p.opts.Overlap
	for len(p.segs) > 0 && p.off >= len(p.segs[0].toks) {
		p.off -= len(p.segs[0].toks)
		p.segs[0] = segment{}
		p.segs = p.segs[1:]
	}
	p.blocks++
	return block, nil
}

// State returns the position to Restore to continue after the blocks
// returned so far.
func (p *Packer) State() State {
	st := State{Offset: p.off, Blocks: p.blocks, Docs: p.docs - int64(len(p.segs))}
	switch {
	case len(p.segs) > 0:
		st.Doc = p.segs[0].pos
	case p.restore != nil:
		st.Doc = *p.restore
	default:
		st.Doc = p.src.Position()
		st.Offset = 0
	}
	return st
}

// Restore continues from a State returned by State (on a Packer with the
// same files, tokenizer and options): the next block is the one that would
// have followed. Restore(State{}) rewinds to the start of the data (for a
// new epoch).
func (p *Packer) Restore(s State) error {
	if s.Offset < 0 {
		return fmt.Errorf("c4: negative offset %d in state", s.Offset)
	}
	if err := p.src.Seek(s.Doc); err != nil {
		return err
	}
	p.segs = nil
	p.off = s.Offset
	p.blocks = s.Blocks
	p.docs = s.Docs
	p.restore = nil
	if s.Offset > 0 {
		pos := s.Doc
		p.restore = &pos
	}
	return nil
}
