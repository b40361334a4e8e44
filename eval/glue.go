package eval

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"

	"github.com/blockllm/blockllm-go/eval/glue"
	"github.com/blockllm/blockllm-go/eval/metrics"
	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/hf/tokenizer"
	"github.com/blockllm/blockllm-go/torch"
)

// PaperTasks are the GLUE tasks of the GaLore and BlockLLM tables, in their
// column order (WNLI, which they leave out, is not among them).
var PaperTasks = []string{"cola", "stsb", "mrpc", "rte", "sst2", "mnli", "qnli", "qqp"}

// ParseTasks parses a comma-separated list of GLUE task names in any spelling
// glue.LookupTask accepts; "all" stands for PaperTasks (add "wnli" for the
// ninth). Repeated tasks are listed once.
func ParseTasks(list string) ([]glue.Task, error) {
	var out []glue.Task
	seen := map[string]bool{}
	add := func(name string) error {
		t, err := glue.LookupTask(name)
		if err != nil {
			return fmt.Errorf("eval: %w", err)
		}
		if !seen[t.Name] {
			seen[t.Name] = true
			out = append(out, t)
		}
		return nil
	}
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		switch {
		case f == "":
		case strings.EqualFold(f, "all"):
			for _, n := range PaperTasks {
				if err := add(n); err != nil {
					return nil, err
				}
			}
		default:
			if err := add(f); err != nil {
				return nil, err
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("eval: no GLUE task given")
	}
	return out, nil
}

// Encoded is one tokenized GLUE example: the token ids of the sentence (or of
// the pair, joined by the tokenizer's post-processor, e.g. "<s> A </s></s> B
// </s>" for RoBERTa) and its label (class id, or similarity score for stsb;
// -1 when unlabelled).
type Encoded struct {
	IDs   []int
	Label float64
}

// EncodeGLUE tokenizes the examples of ds with tok, adding the special tokens
// and truncating to maxLen tokens (special tokens included; for pairs the
// longer input loses tokens first, as Hugging Face's "longest_first"). maxLen
// <= 0 means no truncation. The tokenizer's own truncation and padding
// settings are suspended during the call (padding is done per batch by
// Collate), so tok must not be used concurrently.
func EncodeGLUE(tok *tokenizer.Tokenizer, ds *glue.Dataset, maxLen int) ([]Encoded, error) {
	if tok == nil || ds == nil {
		return nil, fmt.Errorf("eval: EncodeGLUE needs a tokenizer and a dataset")
	}
	oldT, oldP := tok.Truncation(), tok.Padding()
	defer func() { tok.SetTruncation(oldT); tok.SetPadding(oldP) }()
	tok.SetPadding(nil)
	if maxLen > 0 {
		tok.SetTruncation(&tokenizer.Truncation{MaxLength: maxLen, Strategy: tokenizer.LongestFirst})
	} else {
		tok.SetTruncation(nil)
	}
	a := make([]string, len(ds.Examples))
	b := make([]string, len(ds.Examples))
	for i, e := range ds.Examples {
		a[i], b[i] = e.TextA, e.TextB
	}
	var encs []*tokenizer.Encoding
	var err error
	if ds.Task.Pair() {
		encs, err = tok.EncodePairBatch(a, b, true)
	} else {
		encs, err = tok.EncodeBatch(a, true)
	}
	if err != nil {
		return nil, fmt.Errorf("eval: tokenizing %s %s: %w", ds.Task.Name, ds.Split, err)
	}
	out := make([]Encoded, len(encs))
	for i, e := range encs {
		if e.Len() == 0 {
			return nil, fmt.Errorf("eval: %s %s example %d (idx %d) has no tokens", ds.Task.Name, ds.Split, i, ds.Examples[i].Idx)
		}
		out[i] = Encoded{IDs: e.IDs, Label: ds.Examples[i].Label}
	}
	return out, nil
}

// Collate builds a batch from examples: InputIDs [B, T] int64 padded on the
// right with pad to the longest example, AttentionMask [B, T] int64 (1 for
// tokens, 0 for padding), and with withLabels, Labels [B] (int64 class ids,
// or float32 scores when regression). The tensors are made in s and moved to
// dev.
func Collate(s *torch.Scope, ex []Encoded, pad int, regression, withLabels bool, dev torch.Device) (*nn.Batch, error) {
	if len(ex) == 0 {
		return nil, fmt.Errorf("eval: empty batch")
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

// GLUEData is a resumable source of shuffled training batches over encoded
// GLUE examples (it implements blockllm.Data). Each epoch visits every example
// once in an order drawn from (Seed, epoch); the last batch of an epoch may be
// smaller. Batches are padded to their longest example.
type GLUEData struct {
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

// NewGLUEData checks the examples (every one labelled, class ids
// non-negative integers) and returns a batch source starting at epoch 0.
func NewGLUEData(ex []Encoded, batchSize, pad int, regression bool, seed uint64, dev torch.Device) (*GLUEData, error) {
	if len(ex) == 0 {
		return nil, fmt.Errorf("eval: no training examples")
	}
	if batchSize < 1 {
		return nil, fmt.Errorf("eval: batch size %d must be positive", batchSize)
	}
	for i, e := range ex {
		bad := math.IsNaN(e.Label) || math.IsInf(e.Label, 0)
		if !regression {
			bad = bad || e.Label < 0 || e.Label != math.Trunc(e.Label)
		}
		if bad {
			return nil, fmt.Errorf("eval: training example %d has label %v (unlabelled or invalid)", i, e.Label)
		}
	}
	d := &GLUEData{Examples: ex, BatchSize: batchSize, Pad: pad, Regression: regression, Seed: seed, Device: dev}
	d.shuffle()
	return d, nil
}

// StepsPerEpoch is the number of batches in one epoch.
func (d *GLUEData) StepsPerEpoch() int { return (len(d.Examples) + d.BatchSize - 1) / d.BatchSize }

// Epoch is the 0-based epoch of the next batch.
func (d *GLUEData) Epoch() int { return d.epoch }

func (d *GLUEData) shuffle() {
	r := rand.New(rand.NewPCG(d.Seed, uint64(d.epoch)))
	d.order = r.Perm(len(d.Examples))
}

// Next returns the next batch, its tensors owned by s.
func (d *GLUEData) Next(s *torch.Scope) (*nn.Batch, error) {
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
func (d *GLUEData) State() (json.RawMessage, error) {
	return json.Marshal(glueDataState{Epoch: d.epoch, Pos: d.pos, Examples: len(d.Examples)})
}

// Restore continues from a State of a source over the same examples.
func (d *GLUEData) Restore(state json.RawMessage) error {
	var st glueDataState
	if err := json.Unmarshal(state, &st); err != nil {
		return fmt.Errorf("eval: GLUE data state: %w", err)
	}
	if st.Examples != len(d.Examples) || st.Pos < 0 || st.Pos > len(d.Examples) || st.Epoch < 0 {
		return fmt.Errorf("eval: GLUE data state (epoch %d, position %d of %d examples) does not fit %d examples",
			st.Epoch, st.Pos, st.Examples, len(d.Examples))
	}
	d.epoch, d.pos = st.Epoch, st.Pos
	d.shuffle()
	return nil
}

// Predict runs the sequence classifier m over ex (batchSize per forward pass,
// 0 means 32; examples sorted by length so that batches hold little padding)
// and returns one prediction per example in the order of ex: the argmax class
// id, or for a single-output (regression) head the raw score. It runs in
// no-grad mode.
func Predict(m nn.Model, ex []Encoded, batchSize, pad int) ([]float64, error) {
	if batchSize == 0 {
		batchSize = 32
	}
	if batchSize < 1 {
		return nil, fmt.Errorf("eval: batch size %d must be positive", batchSize)
	}
	order := make([]int, len(ex))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return len(ex[order[a]].IDs) < len(ex[order[b]].IDs) })
	pred := make([]float64, len(ex))
	for start := 0; start < len(order); start += batchSize {
		idx := order[start:min(start+batchSize, len(order))]
		batch := make([]Encoded, len(idx))
		for k, i := range idx {
			batch[k] = ex[i]
		}
		var ferr error
		err := torch.WithScope(func(s *torch.Scope) error {
			b, err := Collate(s, batch, pad, false, false, m.Device())
			if err != nil {
				return err
			}
			torch.NoGrad(func() {
				out, err := m.Forward(s, b, false)
				if err != nil {
					ferr = err
					return
				}
				if out == nil || out.Logits == nil || out.Logits.Dim() != 2 || out.Logits.Size(0) != int64(len(idx)) {
					ferr = fmt.Errorf("the model did not return classifier logits [%d, labels]", len(idx))
					return
				}
				C := out.Logits.Size(1)
				if C == 1 {
					for k, v := range out.Logits.To(torch.F64).Float64s() {
						pred[idx[k]] = v
					}
					return
				}
				for k, v := range out.Logits.Argmax(1, false).Int64s() {
					pred[idx[k]] = float64(v)
				}
			})
			return ferr
		})
		if err != nil {
			return nil, fmt.Errorf("eval: prediction: %w", err)
		}
	}
	return pred, nil
}

// ScoreGLUE predicts ex (the encoding of ds, in order) with m and scores the
// predictions against ds's labels (see glue.Dataset.Score).
func ScoreGLUE(m nn.Model, ds *glue.Dataset, ex []Encoded, batchSize, pad int) (metrics.TaskScore, error) {
	if len(ex) != len(ds.Examples) {
		return metrics.TaskScore{}, fmt.Errorf("eval: %d encoded examples for %d in %s %s", len(ex), len(ds.Examples), ds.Task.Name, ds.Split)
	}
	if !ds.Labeled {
		return metrics.TaskScore{}, fmt.Errorf("eval: %s %s has no labels to score against", ds.Task.Name, ds.Split)
	}
	pred, err := Predict(m, ex, batchSize, pad)
	if err != nil {
		return metrics.TaskScore{}, err
	}
	sc, err := ds.Score(pred)
	if err != nil {
		return sc, fmt.Errorf("eval: %w", err)
	}
	return sc, nil
}
