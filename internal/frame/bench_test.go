package frame

import (
	"bytes"
	"testing"
)

// BenchmarkReadPayload reads frames without decoding them: the cost of
// framing alone (header, length checks, and the payload copy a frame that
// fits the read buffer no longer needs).
func BenchmarkReadPayload(b *testing.B) {
	one := encode(b, sampleEnvelopes()[8])
	const n = 1024
	data := bytes.Repeat(one, n)
	src := bytes.NewReader(data)
	r := NewReader(src, Options{})
	b.ReportAllocs()
	b.SetBytes(int64(len(one)))
	i := 0
	for b.Loop() {
		if i == n {
			src.Reset(data)
			i = 0
		}
		if _, err := r.ReadPayload(); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
