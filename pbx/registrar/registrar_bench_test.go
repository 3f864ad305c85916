package registrar

import "testing"

// BenchmarkRegister is one full digest registration (challenge, then the
// authenticated REGISTER that refreshes a binding), without the network.
func BenchmarkRegister(b *testing.B) {
	f := newFixture(&testing.T{})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if res := f.do("Contact: <sip:bob@192.0.2.10:5060>", "Expires: 300"); res.StatusCode != 200 {
			b.Fatal(res.StartLine())
		}
	}
}
