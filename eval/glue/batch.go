package glue

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"

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
// smaller. Batches are padded to their longest example.
type Batches struct {
	Examples   []Encoded
	BatchSize  int
	Pad        int  // padding token id
	Regression bool // float labels (stsb)
	Seed       uint64
	Device     torch.Device

	epoch int
	pos   int
	order []int
}

// NewBatches checks the examples (every one labelled, class ids
// non-negative integers) and returns a batch source starting at epoch 0.
func NewBatches(ex []Encoded, batchSize, pad int, regression bool, seed uint64, dev torch.Device) (*Batches, error) {
	if len(ex) == 0 {
		return nil, fmt.Errorf("glue: no training examples")
	}
	if batchSize < 1 {
		return nil, fmt.Errorf("glue: batch size %d must be positive", batchSize)
	}
	for i, e := range ex {
		bad := math.IsNaN(e.Label) || math.IsInf(e.Label, 0)
		if !regression {
			bad = bad || e.Label < 0 || e.Label != math.Trunc(e.Label)
		}
		if bad {
			return nil, fmt.Errorf("glue: training example %d has label %v (unlabelled or invalid)", i, e.Label)
		}
	}
	d := &Batches{Examples: ex, BatchSize: batchSize, Pad: pad, Regression: regression, Seed: seed, Device: dev}
	d.shuffle()
	return d, nil
}

// StepsPerEpoch is the number of batches in one epoch.
func (d *Batches) StepsPerEpoch() int { return (len(d.Examples) + d.BatchSize - 1) / d.BatchSize }

// Epoch is the 0-based epoch of the next batch.
func (d *Batches) Epoch() int { return d.epoch }

func (d *Batches) shuffle() {
	r := rand.New(rand.NewPCG(d.Seed, uint64(d.epoch)))
	d.order = r.Perm(len(d.Examples))
}

// Next returns the next batch, its tensors owned by s.
func (d *Batches) Next(s *torch.Scope) (*nn.Batch, error) {
	if d.pos >= len(d.order) {
		d.epoch++
		d.pos = 0
		d.shuffle()
	}
	end := min(d.pos+d.BatchSize, len(d.order))
	ex := make([]Encoded, 0, end-d.pos)
	for _, i := range d.order[d.pos:end] {
		ex = append(ex, d.Examples[i])
	}
	d.pos = end
	return Collate(s, ex, d.Pad, d.Regression, true, d.Device)
}

type glueDataState struct {
	Epoch    int `json:"epoch"`
	Pos      int `json:"pos"`
	Examples int `json:"examples"`
}

// State returns the epoch and position as JSON.
func (d *Batches) State() (json.RawMessage, error) {
	return json.Marshal(glueDataState{Epoch: d.epoch, Pos: d.pos, Examples: len(d.Examples)})
}

// Restore continues from a State of a source over the same examples.
func (d *Batches) Restore(state json.RawMessage) error {
	var st glueDataState
	if err := json.Unmarshal(state, &st); err != nil {
		return fmt.Errorf("glue: data state: %w", err)
	}
	if st.Examples != len(d.Examples) || st.Pos < 0 || st.Pos > len(d.Examples) || st.Epoch < 0 {
		return fmt.Errorf("glue: data state (epoch %d, position %d of %d examples) does not fit %d examples",
			st.Epoch, st.Pos, st.Examples, len(d.Examples))
	}
	d.epoch, d.pos = st.Epoch, st.Pos
	d.shuffle()
	return nil
}
