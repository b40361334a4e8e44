package sampler

import (
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestShardsCoverGlobalBatches: two ranks' shares of each step are disjoint and
// together are the one-process batch of twice the size, step by step; every example is
// seen once per epoch; resume continues identically.
func TestShardsCoverGlobalBatches(t *testing.T) {
	one, err := New(10, 4, 7, 0, 1)
	require.NoError(t, err)
	r0, _ := New(10, 2, 7, 0, 2)
	r1, _ := New(10, 2, 7, 1, 2)
	assert.Equal(t, 3, one.StepsPerEpoch())
	assert.Equal(t, 3, r0.StepsPerEpoch())
	var seen []int
	for step := 0; step < 6; step++ {
		g := one.Next()
		a, b := r0.Next(), r1.Next()
		assert.Equal(t, g, append(append([]int(nil), a...), b...), "step %d", step)
		if step < 3 {
			seen = append(seen, g...)
		}
	}
	sort.Ints(seen)
	assert.Equal(t, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, seen)
	st, err := r1.State()
	require.NoError(t, err)
	want := r1.Next()
	c, _ := New(10, 2, 7, 1, 2)
	require.NoError(t, c.Restore(st))
	assert.Equal(t, want, c.Next())
	assert.Error(t, c.Restore([]byte(`{"epoch":0,"pos":3,"examples":11}`)))

	// a last batch smaller than the number of ranks: nobody gets an empty share
	s2, _ := New(3, 1, 1, 2, 4)
	for i := 0; i < 3; i++ {
		assert.NotEmpty(t, s2.Next())
	}
	_, err = New(0, 1, 1, 0, 1)
	assert.Error(t, err)
	_, err = New(4, 1, 1, 2, 2)
	assert.Error(t, err)
}
