package config

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// robertaBase is roberta-base's config.json (transformers v4, no labels).
const robertaBase = `{
  "architectures": ["RobertaForMaskedLM"],
  "attention_probs_dropout_prob": 0.1,
  "bos_token_id": 0,
  "eos_token_id": 2,
  "hidden_act": "gelu",
  "hidden_dropout_prob": 0.1,
  "hidden_size": 768,
  "initializer_range": 0.02,
  "intermediate_size": 3072,
  "layer_norm_eps": 1e-05,
  "max_position_embeddings": 514,
  "model_type": "roberta",
  "num_attention_heads": 12,
  "num_hidden_layers": 12,
  "pad_token_id": 1,
  "type_vocab_size": 1,
  "vocab_size": 50265
}`

func robertaWith(t *testing.T, edit func(m map[string]any)) []byte {
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(robertaBase), &m))
	edit(m)
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return b
}

func TestRobertaBase(t *testing.T) {
	c, err := ParseRoberta([]byte(robertaBase))
	require.NoError(t, err)
	assert.Equal(t, 2, c.NumLabels(), "transformers' default")
	assert.False(t, c.IsRegression())
	assert.Equal(t, 1e-5, c.LayerNormEps)
	assert.Equal(t, 514, c.MaxPositionEmbeddings)
	assert.Nil(t, c.ID2Label)
	out, err := c.Marshal()
	require.NoError(t, err)
	assert.NotContains(t, string(out), "id2label", "no labels invented")

	// Fine-tuning for a 3-way task (MNLI).
	c.SetLabels("entailment", "neutral", "contradiction")
	c.Architectures = []string{"RobertaForSequenceClassification"}
	out, err = c.Marshal()
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(out, &m))
	assert.Equal(t, map[string]any{"0": "entailment", "1": "neutral", "2": "contradiction"}, m["id2label"])
	assert.Equal(t, map[string]any{"entailment": 0.0, "neutral": 1.0, "contradiction": 2.0}, m["label2id"])
	back, err := ParseRoberta(out)
	require.NoError(t, err)
	assert.Equal(t, 3, back.NumLabels())
	assert.False(t, back.IsRegression())
	assert.Equal(t, "neutral", back.ID2Label[1])

	// STS-B style regression: one label.
	c.SetNumLabels(1)
	assert.True(t, c.IsRegression())
	out, err = c.Marshal()
	require.NoError(t, err)
	assert.Contains(t, string(out), `"0": "LABEL_0"`)
	back, err = ParseRoberta(out)
	require.NoError(t, err)
	assert.Equal(t, 1, back.NumLabels())
	assert.True(t, back.IsRegression())
}

func TestRobertaLabels(t *testing.T) {
	// num_labels given directly (no id2label).
	c, err := ParseRoberta(robertaWith(t, func(m map[string]any) { m["num_labels"] = 5 }))
	require.NoError(t, err)
	assert.Equal(t, 5, c.NumLabels())
	out, err := c.Marshal()
	require.NoError(t, err)
	assert.Contains(t, string(out), `"num_labels": 5`)

	// Regression by num_labels 1 without problem_type.
	c, err = ParseRoberta(robertaWith(t, func(m map[string]any) { m["id2label"] = map[string]any{"0": "LABEL_0"} }))
	require.NoError(t, err)
	assert.True(t, c.IsRegression())

	// Explicit problem types.
	c, err = ParseRoberta(robertaWith(t, func(m map[string]any) {
		m["id2label"] = map[string]any{"0": "a", "1": "b", "2": "c"}
		m["label2id"] = map[string]any{"a": 0, "b": 1, "c": 2}
		m["problem_type"] = "multi_label_classification"
	}))
	require.NoError(t, err)
	assert.Equal(t, 3, c.NumLabels())
	assert.True(t, c.IsMultiLabel())
	assert.False(t, c.IsRegression())
	c, err = ParseRoberta(robertaWith(t, func(m map[string]any) {
		m["num_labels"] = 2
		m["problem_type"] = "regression"
	}))
	require.NoError(t, err)
	assert.True(t, c.IsRegression(), "problem_type regression with 2 outputs")

	// v4 torch_dtype and an explicit classifier_dropout round trip.
	c, err = ParseRoberta(robertaWith(t, func(m map[string]any) {
		m["torch_dtype"] = "float32"
		m["classifier_dropout"] = 0.2
		m["position_embedding_type"] = "absolute"
	}))
	require.NoError(t, err)
	assert.Equal(t, "float32", c.DType)
	out, err = c.Marshal()
	require.NoError(t, err)
	back, err := ParseRoberta(out)
	require.NoError(t, err)
	assert.Equal(t, c.Map(), back.Map())
	assert.Equal(t, 0.2, *back.ClassifierDropout)
	assert.Equal(t, "absolute", back.PositionEmbeddingType)
}

func TestRobertaBadConfigs(t *testing.T) {
	cases := []struct {
		name string
		edit func(m map[string]any)
		key  string
		want string
	}{
		{"missing-vocab", func(m map[string]any) { delete(m, "vocab_size") }, "vocab_size", "missing"},
		{"heads", func(m map[string]any) { m["num_attention_heads"] = 7 }, "num_attention_heads", "does not divide hidden_size 768"},
		{"pad-null", func(m map[string]any) { m["pad_token_id"] = nil }, "pad_token_id", "null"},
		{"pad-outside", func(m map[string]any) { m["pad_token_id"] = 50265 }, "pad_token_id", "outside the vocabulary"},
		{"positions", func(m map[string]any) { m["max_position_embeddings"] = 2 }, "max_position_embeddings", "no positions after the padding offset"},
		{"eps", func(m map[string]any) { m["layer_norm_eps"] = -1 }, "layer_norm_eps", "must be positive"},
		{"eps-string", func(m map[string]any) { m["layer_norm_eps"] = "1e-5" }, "layer_norm_eps", "want a number"},
		{"type-vocab", func(m map[string]any) { m["type_vocab_size"] = 0 }, "type_vocab_size", "must be positive"},
		{"dropout", func(m map[string]any) { m["hidden_dropout_prob"] = 1.5 }, "hidden_dropout_prob", "[0, 1)"},
		{"act", func(m map[string]any) { m["hidden_act"] = "swiglu" }, "hidden_act", `unknown activation "swiglu"`},
		{"pos-type", func(m map[string]any) { m["position_embedding_type"] = "relative_key" }, "position_embedding_type", "not supported"},
		{"problem", func(m map[string]any) { m["problem_type"] = "ranking" }, "problem_type", `unknown problem type "ranking"`},
		{"regression-default-labels", func(m map[string]any) { m["problem_type"] = "regression" }, "problem_type", "needs num_labels"},
		{"id2label-gap", func(m map[string]any) { m["id2label"] = map[string]any{"0": "a", "2": "b"} }, "id2label", "no label 1"},
		{"id2label-key", func(m map[string]any) { m["id2label"] = map[string]any{"zero": "a"} }, "id2label", `key "zero" is not an integer`},
		{"id2label-empty", func(m map[string]any) { m["id2label"] = map[string]any{} }, "id2label", "empty"},
		{"label2id-mismatch", func(m map[string]any) {
			m["id2label"] = map[string]any{"0": "neg", "1": "pos"}
			m["label2id"] = map[string]any{"neg": 1, "pos": 0}
		}, "label2id", `label "neg" has index 1 but id2label[1] is "pos"`},
		{"num-labels-conflict", func(m map[string]any) {
			m["id2label"] = map[string]any{"0": "neg", "1": "pos"}
			m["num_labels"] = 3
		}, "num_labels", "disagrees with id2label's 2 labels"},
		{"num-labels-zero", func(m map[string]any) { m["num_labels"] = 0 }, "num_labels", "must be positive"},
		{"model-type", func(m map[string]any) { m["model_type"] = "llama" }, "model_type", `want "roberta"`},
		{"dtype", func(m map[string]any) { m["torch_dtype"] = "int8" }, "dtype", `unknown dtype "int8"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseRoberta(robertaWith(t, c.edit))
			require.Error(t, err)
			var e *Error
			require.True(t, errors.As(err, &e), "%T", err)
			assert.Equal(t, c.key, e.Key, err.Error())
			assert.Contains(t, err.Error(), c.want)
			assert.True(t, strings.HasPrefix(err.Error(), "config: "), err.Error())
		})
	}
}
