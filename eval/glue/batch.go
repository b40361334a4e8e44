package glue

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/blockllm/blockllm-go/eval/internal/sampler"
	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/torch"
)

// Collate builds a batch from examples: InputIDs [B, T] int64 padded on the
// right with pad to the longest example, AttentionMask [B, T] int64 (1 for
// tokens, 0 for padding), and with withLabels, Labels [B] (int64 class ids,
// or float32 scores when regression). The tensors are made in s and moved to
// dev.
func Collate(s *torch.Scope, ex []Encoded, pad int, regression, withLabels bool, dev torch.Device) (*nn.Batch, error) {
	if len(ex) == 0 {
		return nil, fmt.Errorf("glue: empty batch")
	}
	T := 0
	for _, e := range ex {
		T = max(T, len(e.IDs))
	}
	B := len(ex)
	ids := make([]int64, B*T)
	mask := make([]int64, B*T)
	for i, e := range ex {
		for t := range T {
			if t < len(e.IDs) {
				ids[i*T+t] = int64(e.IDs[t])
				mask[i*T+t] = 1
			} else {
				ids[i*T+t] = int64(pad)
			}
		}
	}
	var b *nn.Batch
	err := torch.Try(func() {
		move := func(x *torch.Tensor) *torch.Tensor {
			if dev != torch.CPU {
				return x.ToDevice(x.DType(), dev)
			}
			return x
		}
		b = &nn.Batch{
			InputIDs:      move(s.FromInt64(ids, int64(B), int64(T))),
			AttentionMask: move(s.FromInt64(mask, int64(B), int64(T))),
		}
		if !withLabels {
			return
		}
		if regression {
			l := make([]float32, B)
			for i, e := range ex {
				l[i] = float32(e.Label)
			}
			b.Labels = move(s.FromFloat32(l, int64(B)))
		} else {
			l := make([]int64, B)
			for i, e := range ex {
				l[i] = int64(e.Label)
			}
			b.Labels = move(s.FromInt64(l, int64(B)))
		}
	})
	return b, err
}

// Batches is a resumable source of shuffled training batches over encoded
// GLUE examples (it implements blockllm.Data). Each epoch visits every example
// once in an order drawn from (Seed, epoch); the last batch of an epoch may be
// smaller. Batches are padded to their longest example. In data-parallel training
// (size > 1) each rank takes its share of every global batch of batchSize*size
// examples, as PyTorch's DistributedSampler splits them.
type Batches struct {
	Examples   []Encoded
	Pad        int  // padding token id
	Regression bool // float labels (stsb)
	Device     torch.Device

	s *sampler.Sampler
}

// NewBatches checks the examples (every one labelled, class ids non-negative
// integers) and returns a batch source starting at epoch 0 for rank of size ranks
// (size 0 or 1: one process).
func NewBatches(ex []Encoded, batchSize, pad int, regression bool, seed uint64, dev torch.Device, rank, size int) (*Batches, error) {
	for i, e := range ex {
		bad := math.IsNaN(e.Label) || math.IsInf(e.Label, 0)
		if !regression {
			bad = bad || e.Label < 0 || e.Label != math.Trunc(e.Label)
		}
		if bad {
			return nil, fmt.Errorf("glue: training example %d has label %v (unlabelled or invalid)", i, e.Label)
		}
	}
	s, err := sampler.New(len(ex), batchSize, seed, rank, size)
	if err != nil {
		return nil, fmt.Errorf("glue: %w", err)
	}
	return &Batches{Examples: ex, Pad: pad, Regression: regression, Device: dev, s: s}, nil
}

// StepsPerEpoch is the number of (global) batches in one epoch.
func (d *Batches) StepsPerEpoch() int { return d.s.StepsPerEpoch() }

// Epoch is the 0-based epoch of the next batch.
func (d *Batches) Epoch() int { return d.s.Epoch() }

// Next returns this rank's next batch, its tensors owned by s.
func (d *Batches) Next(s *torch.Scope) (*nn.Batch, error) {
	idx := d.s.Next()
	ex := make([]Encoded, len(idx))
	for k, i := range idx {
		ex[k] = d.Examples[i]
	}
	return Collate(s, ex, d.Pad, d.Regression, true, d.Device)
}

// State returns the epoch and position as JSON.
func (d *Batches) State() (json.RawMessage, error) { return d.s.State() }

// Restore continues from a State of a source over the same examples.
func (d *Batches) Restore(state json.RawMessage) error {
	if err := d.s.Restore(state); err != nil {
		return fmt.Errorf("glue: %w", err)
	}
	return nil
}
