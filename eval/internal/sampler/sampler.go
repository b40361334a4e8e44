// Package sampler draws the example indices of training batches: a seeded permutation
// per epoch (every example once per epoch), cut into global batches, each split across
// the ranks of data-parallel training as PyTorch's DistributedSampler does. It is
// resumable (State, Restore) and shared by the benchmark readers' batch sources.
package sampler

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
)

// Sampler yields, step after step, this rank's share of a global batch of Batch*Size
// example indices out of N.
type Sampler struct {
	N, Batch   int
	Rank, Size int
	Seed       uint64

	epoch, pos int
	order      []int
}

// New checks the sizes and returns a sampler at epoch 0 (size 0 means 1).
func New(n, batch int, seed uint64, rank, size int) (*Sampler, error) {
	size = max(size, 1)
	switch {
	case n < 1:
		return nil, fmt.Errorf("no training examples")
	case batch < 1:
		return nil, fmt.Errorf("batch size %d must be positive", batch)
	case rank < 0 || rank >= size:
		return nil, fmt.Errorf("rank %d outside 0..%d", rank, size-1)
	}
	s := &Sampler{N: n, Batch: batch, Rank: rank, Size: size, Seed: seed}
	s.shuffle()
	return s, nil
}

func (s *Sampler) shuffle() {
	s.order = rand.New(rand.NewPCG(s.Seed, uint64(s.epoch))).Perm(s.N)
}

// StepsPerEpoch is the number of global batches in one epoch.
func (s *Sampler) StepsPerEpoch() int { g := s.Batch * s.Size; return (s.N + g - 1) / g }

// Epoch is the 0-based epoch of the next batch.
func (s *Sampler) Epoch() int { return s.epoch }

// Next returns this rank's indices of the next global batch. The global batch is the
// next Batch*Size indices of the epoch's permutation (fewer at its end), split into
// Size contiguous shares as evenly as possible; a share that would be empty (the last
// batch holds fewer examples than ranks) takes examples from the start of the
// permutation instead, as DistributedSampler pads.
func (s *Sampler) Next() []int {
	if s.pos >= len(s.order) {
		s.epoch++
		s.pos = 0
		s.shuffle()
	}
	end := min(s.pos+s.Batch*s.Size, len(s.order))
	global := s.order[s.pos:end]
	s.pos = end
	n := len(global)
	lo, hi := s.Rank*n/s.Size, (s.Rank+1)*n/s.Size
	if lo == hi {
		return []int{s.order[s.Rank%len(s.order)]}
	}
	return append([]int(nil), global[lo:hi]...)
}

type state struct {
	Epoch int `json:"epoch"`
	Pos   int `json:"pos"`
	N     int `json:"examples"`
}

// State returns the epoch and position as JSON.
func (s *Sampler) State() (json.RawMessage, error) {
	return json.Marshal(state{Epoch: s.epoch, Pos: s.pos, N: s.N})
}

// Restore continues from a State of a sampler over as many examples.
func (s *Sampler) Restore(raw json.RawMessage) error {
	var st state
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("data state: %w", err)
	}
	if st.N != s.N || st.Pos < 0 || st.Pos > s.N || st.Epoch < 0 {
		return fmt.Errorf("data state (epoch %d, position %d of %d examples) does not fit %d examples", st.Epoch, st.Pos, st.N, s.N)
	}
	s.epoch, s.pos = st.Epoch, st.Pos
	s.shuffle()
	return nil
}
