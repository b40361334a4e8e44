package blockllm

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"

	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/torch"
)

// Data is a resumable source of training batches.
type Data interface {
	// Next returns the next batch, its tensors owned by s.
	Next(s *torch.Scope) (*nn.Batch, error)
	// State is the position after the batches returned so far, as JSON.
	State() (json.RawMessage, error)
	// Restore continues from a State: the next batch is the one that would have
	// followed.
	Restore(state json.RawMessage) error
}

// RandomTokens yields batches of uniformly random token ids (a causal-LM benchmark and
// test source): InputIDs [Batch, SeqLen] int64 on Device, labels nil. The ids come from
// a seeded Go PCG, so they are the same on every device and platform.
type RandomTokens struct {
	Vocab, Batch, SeqLen int
	Device               torch.Device
	rng                  *rand.PCG
	n                    int64
}

// NewRandomTokens returns a seeded random-token source.
func NewRandomTokens(vocab, batch, seqLen int, seed uint64, dev torch.Device) (*RandomTokens, error) {
	if vocab < 1 || batch < 1 || seqLen < 1 {
		return nil, fmt.Errorf("blockllm: random tokens need positive vocab, batch and length (got %d, %d, %d)", vocab, batch, seqLen)
	}
	return &RandomTokens{Vocab: vocab, Batch: batch, SeqLen: seqLen, Device: dev, rng: rand.NewPCG(seed, 0x5eed)}, nil
}

// Next returns the next batch.
func (r *RandomTokens) Next(s *torch.Scope) (*nn.Batch, error) {
	ids := make([]int64, r.Batch*r.SeqLen)
	g := rand.New(r.rng)
	for i := range ids {
		ids[i] = int64(g.IntN(r.Vocab))
	}
	r.n++
	var b *nn.Batch
	err := torch.Try(func() {
		t := s.FromInt64(ids, int64(r.Batch), int64(r.SeqLen))
		if r.Device != torch.CPU {
			t = t.ToDevice(torch.I64, r.Device)
		}
		b = &nn.Batch{InputIDs: t}
	})
	return b, err
}

type randomState struct {
	RNG     []byte `json:"rng"`
	Batches int64  `json:"batches"`
}

// State returns the generator state and batch count.
func (r *RandomTokens) State() (json.RawMessage, error) {
	b, err := r.rng.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return json.Marshal(randomState{RNG: b, Batches: r.n})
}

// Restore continues from State.
func (r *RandomTokens) Restore(state json.RawMessage) error {
	var st randomState
	if err := json.Unmarshal(state, &st); err != nil {
		return fmt.Errorf("blockllm: random-token data state: %w", err)
	}
	if err := r.rng.UnmarshalBinary(st.RNG); err != nil {
		return fmt.Errorf("blockllm: random-token data state: %w", err)
	}
	r.n = st.Batches
	return nil
}

// TokenBlocks turns a resumable stream of token blocks (for example an eval/c4 Packer
// with BlockLen = SeqLen) into causal-LM batches of Batch blocks on Device. With Size > 1
// (data parallelism) every rank reads the same stream of global batches of Batch*Size
// blocks and keeps its own Batch of each (rank r: blocks r*Batch to (r+1)*Batch), so no
// two ranks train on the same block in a step and the ranks together see what one
// process with a batch of Batch*Size would.
type TokenBlocks struct {
	Batch  int
	Device torch.Device
	// Rank and Size shard the global batches (Size 0 or 1: no sharding).
	Rank, Size int
	// NextBlock returns the next block of token ids (all blocks the same length).
	NextBlock func() ([]int, error)
	// Position and Seek save and restore the stream position as JSON.
	Position func() (json.RawMessage, error)
	Seek     func(json.RawMessage) error
}

// Next returns the next batch of Batch blocks.
func (d *TokenBlocks) Next(s *torch.Scope) (*nn.Batch, error) {
	if d.Batch < 1 || d.NextBlock == nil {
		return nil, fmt.Errorf("blockllm: token blocks need a positive batch size and a NextBlock function")
	}
	size := max(d.Size, 1)
	if d.Rank < 0 || d.Rank >= size {
		return nil, fmt.Errorf("blockllm: token blocks: rank %d outside 0..%d", d.Rank, size-1)
	}
	var ids []int64
	T := -1
	for i := 0; i < d.Batch*size; i++ {
		blk, err := d.NextBlock()
		if err != nil {
			return nil, err
		}
		if T >= 0 && len(blk) != T {
			return nil, fmt.Errorf("blockllm: token block %d has %d tokens, the first had %d", i, len(blk), T)
		}
		T = len(blk)
		if i/d.Batch != d.Rank {
			continue // another rank's share
		}
		for _, id := range blk {
			ids = append(ids, int64(id))
		}
	}
	var b *nn.Batch
	err := torch.Try(func() {
		t := s.FromInt64(ids, int64(d.Batch), int64(T))
		if d.Device != torch.CPU {
			t = t.ToDevice(torch.I64, d.Device)
		}
		b = &nn.Batch{InputIDs: t}
	})
	return b, err
}

// State returns Position().
func (d *TokenBlocks) State() (json.RawMessage, error) {
	if d.Position == nil {
		return nil, fmt.Errorf("blockllm: token blocks without a Position function cannot be checkpointed")
	}
	return d.Position()
}

// Restore calls Seek.
func (d *TokenBlocks) Restore(state json.RawMessage) error {
	if d.Seek == nil {
		return fmt.Errorf("blockllm: token blocks without a Seek function cannot resume")
	}
	return d.Seek(state)
}
