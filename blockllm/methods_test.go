package blockllm

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	assert.Equal(t, "BlockLLM (sparsity 0.95)", MethodConfig{Method: "blockllm"}.Label())
	assert.Equal(t, "BlockLLM (sparsity 0.5, eligible .*)",
		MethodConfig{Method: "blockllm", BlockLLM: BlockLLMConfig{Sparsity: 0.5, Eligible: []string{".*"}}}.Label())
	assert.Equal(t, "Full AdamW", MethodConfig{Method: "adamw"}.Label())
	assert.Equal(t, "BAdam", MethodConfig{Method: "badam"}.Label())
	assert.Equal(t, "LISA", MethodConfig{Method: "lisa"}.Label())
	assert.Equal(t, "GaLore (rank 128)", MethodConfig{Method: "galore"}.Label())
	assert.Equal(t, "GaLore (rank 4)", MethodConfig{Method: "galore", GaLore: GaLoreGLUE}.Label())
	assert.Equal(t, "LoRA (r 8)", MethodConfig{Method: "lora"}.Label())
	assert.Equal(t, "LoRA (r 16)", MethodConfig{Method: "lora", LoRA: LoRAConfig{Rank: 16}}.Label())
}

// TestNewOptimizer builds every method over a tiny llama; BlockLLM honours the
// sparsity, patience and eligibility it is given, and the shared Adam settings.
func TestNewOptimizer(t *testing.T) {
	m := loadTinyLlama(t)
	for _, name := range Methods {
		o, err := NewOptimizer(m, MethodConfig{Method: name, Adam: AdamConfig{WeightDecay: 0.25},
			BlockLLM: BlockLLMConfig{Sparsity: 0.5, Eligible: []string{".*"}, Patience: 5}})
		require.NoError(t, err, name)
		assert.Equal(t, name, o.Name())
		if b, ok := o.(*BlockLLM); ok {
			assert.Equal(t, 0.5, b.Config().Sparsity)
			assert.Equal(t, 5, b.Config().Patience)
			assert.Equal(t, 0.25, b.Config().Adam.WeightDecay)
			assert.Len(t, b.Eligible(), len(m.Parameters()), "'.*' makes every tensor eligible")
		}
		o.Close()
	}
	_, err := NewOptimizer(m, MethodConfig{Method: "sgd"})
	assert.Error(t, err)
}
