package c4

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEpochs: the stream restarts at the end of the data, counts epochs, resumes from
// a position taken mid-epoch, and refuses data too short for one block.
func TestEpochs(t *testing.T) {
	// Stream: 1 2 101 3 4 5 101 (7 tokens): blocks of 3 give 2 per epoch.
	newEpochs := func() *Epochs {
		p, err := NewPacker(memReader(t, "ab", "cde"), byteTok, PackOptions{BlockLen: 3, EOS: []int{101}})
		require.NoError(t, err)
		return &Epochs{Packer: p, Desc: "mem"}
	}
	e := newEpochs()
	var got [][]int
	var pos []byte
	for i := range 5 {
		if i == 3 {
			p, err := e.Position()
			require.NoError(t, err)
			pos = p
		}
		b, err := e.Next()
		require.NoError(t, err)
		got = append(got, b)
	}
	assert.Equal(t, [][]int{{1, 2, 101}, {3, 4, 5}, {1, 2, 101}, {3, 4, 5}, {1, 2, 101}}, got)
	assert.Equal(t, 2, e.Epoch())

	r := newEpochs()
	require.NoError(t, r.Seek(pos))
	for i := 3; i < 5; i++ {
		b, err := r.Next()
		require.NoError(t, err)
		assert.Equal(t, got[i], b, "block %d after Seek", i)
	}
	assert.Equal(t, 2, r.Epoch())
	assert.Error(t, r.Seek([]byte("{")))

	p, err := NewPacker(memReader(t, "a"), byteTok, PackOptions{BlockLen: 8})
	require.NoError(t, err)
	_, err = (&Epochs{Packer: p, Desc: "tiny.txt"}).Next()
	assert.ErrorContains(t, err, "tiny.txt")
	assert.ErrorContains(t, err, "too short for one block")
}
