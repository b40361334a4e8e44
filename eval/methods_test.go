package eval

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/blockllm/blockllm-go/blockllm"
)

func TestParseMethods(t *testing.T) {
	m, err := ParseMethods(" BlockLLM, adamw,,lisa ")
	require.NoError(t, err)
	assert.Equal(t, []string{"blockllm", "adamw", "lisa"}, m)
	_, err = ParseMethods("adamw,sgd")
	assert.ErrorContains(t, err, `unknown method "sgd"`)
	_, err = ParseMethods("adamw,adamw")
	assert.ErrorContains(t, err, "twice")
	_, err = ParseMethods(" , ")
	assert.ErrorContains(t, err, "no method")
}

func TestMethodLabel(t *testing.T) {
	assert.Equal(t, "BlockLLM (sparsity 0.95)", MethodLabel(MethodConfig{Method: "blockllm"}))
	assert.Equal(t, "BlockLLM (sparsity 0.5, eligible .*)", MethodLabel(MethodConfig{Method: "blockllm", Sparsity: 0.5, Eligible: []string{".*"}}))
	assert.Equal(t, "Full AdamW", MethodLabel(MethodConfig{Method: "adamw"}))
	assert.Equal(t, "BAdam", MethodLabel(MethodConfig{Method: "badam"}))
	assert.Equal(t, "LISA", MethodLabel(MethodConfig{Method: "lisa"}))
}

// TestNewOptimizer builds every method over a tiny llama; BlockLLM honours
// the sparsity and eligibility it is given.
func TestNewOptimizer(t *testing.T) {
	m := tinyLlama(t)
	for _, name := range Methods {
		o, err := NewOptimizer(m, MethodConfig{Method: name, Sparsity: 0.5, Eligible: []string{".*"}, Patience: 5})
		require.NoError(t, err, name)
		assert.Equal(t, name, o.Name())
		if b, ok := o.(*blockllm.BlockLLM); ok {
			assert.Equal(t, 0.5, b.Config().Sparsity)
			assert.Equal(t, 5, b.Config().Patience)
			assert.Len(t, b.Eligible(), len(m.Parameters()), "'.*' makes every tensor eligible")
		}
		o.Close()
	}
	_, err := NewOptimizer(m, MethodConfig{Method: "sgd"})
	assert.Error(t, err)
}

func TestLogCollector(t *testing.T) {
	var fwd bytes.Buffer
	c := &LogCollector{Forward: &fwd, Extra: map[string]any{"task": "sst2"}}
	lines := []string{
		`{"event":"step","step":1,"memory":{"optimizer_state_bytes":100,"peak_bytes":1000}}`,
		`{"event":"selection","step":2}`,
		`{"event":"step","step":2,"memory":{"optimizer_state_bytes":300,"peak_bytes":900}}`,
		`{"event":"summary","memory":{"optimizer_state_bytes":50,"peak_bytes":2000}}`,
	}
	all := strings.Join(lines, "\n") + "\n"
	// Written in odd pieces, as a writer may be.
	for i := 0; i < len(all); i += 7 {
		_, err := c.Write([]byte(all[i:min(i+7, len(all))]))
		require.NoError(t, err)
	}
	assert.Equal(t, int64(300), c.MaxOptimizerBytes())
	assert.Equal(t, int64(2000), c.MaxPeakBytes())
	assert.Equal(t, 1, c.Selections())
	out := strings.Split(strings.TrimSpace(fwd.String()), "\n")
	require.Len(t, out, 4)
	var ev map[string]any
	require.NoError(t, json.Unmarshal([]byte(out[1]), &ev))
	assert.Equal(t, "sst2", ev["task"])
	assert.Equal(t, "selection", ev["event"])
}
