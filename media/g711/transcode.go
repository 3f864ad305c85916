package g711

// UlawToAlaw returns the A-law code for the µ-law code b: the A-law
// encoding of b's decoded value. The bridge uses it to join a PCMU leg to
// a PCMA leg without going through linear samples.
func UlawToAlaw(b byte) byte { return ulawToAlaw[b] }

// AlawToUlaw returns the µ-law code for the A-law code b: the µ-law
// encoding of b's decoded value.
func AlawToUlaw(b byte) byte { return alawToUlaw[b] }

// TranscodeUlawToAlaw rewrites the µ-law payload p in place as A-law.
func TranscodeUlawToAlaw(p []byte) {
	for i, b := range p {
		p[i] = ulawToAlaw[b]
	}
}

// TranscodeAlawToUlaw rewrites the A-law payload p in place as µ-law.
func TranscodeAlawToUlaw(p []byte) {
	for i, b := range p {
		p[i] = alawToUlaw[b]
	}
}
