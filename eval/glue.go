package eval

import (
	"fmt"
	"sort"

	"github.com/blockllm/blockllm-go/eval/glue"
	"github.com/blockllm/blockllm-go/eval/metrics"
	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/torch"
)

// Predict runs the sequence classifier m over ex (batchSize per forward pass,
// 0 means 32; examples sorted by length so that batches hold little padding)
// and returns one prediction per example in the order of ex: the argmax class
// id, or for a single-output (regression) head the raw score. It runs in
// no-grad mode.
func Predict(m nn.Model, ex []glue.Encoded, batchSize, pad int) ([]float64, error) {
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
		batch := make([]glue.Encoded, len(idx))
		for k, i := range idx {
			batch[k] = ex[i]
		}
		var ferr error
		err := torch.WithScope(func(s *torch.Scope) error {
			b, err := glue.Collate(s, batch, pad, false, false, m.Device())
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
func ScoreGLUE(m nn.Model, ds *glue.Dataset, ex []glue.Encoded, batchSize, pad int) (metrics.TaskScore, error) {
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

// ScoreGLUEShard is ScoreGLUE in data-parallel evaluation: this rank predicts the
// examples i ≡ rank (mod size), reduce sums the ranks' prediction vectors (zeros where a
// rank did not predict), and every rank scores all predictions.
func ScoreGLUEShard(m nn.Model, ds *glue.Dataset, ex []glue.Encoded, batchSize, pad, rank, size int,
	reduce func([]float64) ([]float64, error)) (metrics.TaskScore, error) {
	if size <= 1 {
		return ScoreGLUE(m, ds, ex, batchSize, pad)
	}
	if len(ex) != len(ds.Examples) {
		return metrics.TaskScore{}, fmt.Errorf("eval: %d encoded examples for %d in %s %s", len(ex), len(ds.Examples), ds.Task.Name, ds.Split)
	}
	var idx []int
	var mine []glue.Encoded
	for i := rank; i < len(ex); i += size {
		idx, mine = append(idx, i), append(mine, ex[i])
	}
	all := make([]float64, len(ex))
	if len(mine) > 0 {
		pred, err := Predict(m, mine, batchSize, pad)
		if err != nil {
			return metrics.TaskScore{}, err
		}
		for k, i := range idx {
			all[i] = pred[k]
		}
	}
	all, err := reduce(all)
	if err != nil {
		return metrics.TaskScore{}, fmt.Errorf("eval: gathering predictions: %w", err)
	}
	sc, err := ds.Score(all)
	if err != nil {
		return sc, fmt.Errorf("eval: %w", err)
	}
	return sc, nil
}
