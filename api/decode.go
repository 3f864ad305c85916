package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"pbxd/store"
)

// MaxBodyBytes bounds every request body.
const MaxBodyBytes = 1 << 20

// decodeJSON reads r's body strictly into v: JSON only, one value, no
// unknown members, at most MaxBodyBytes. Every failure is a 4xx Problem.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) *Problem {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return problem(http.StatusUnsupportedMediaType, ProbUnsupportedMedia, "send the body as application/json")
		}
	}
	body := http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	data, err := io.ReadAll(body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return problem(http.StatusRequestEntityTooLarge, ProbBodyTooLarge, fmt.Sprintf("the body must be at most %d bytes", MaxBodyBytes))
		}
		return badRequest("could not read the request body")
	}
	return decodeBytes(data, v)
}

// decodeBytes is decodeJSON without the transport; the fuzz target drives it.
func decodeBytes(data []byte, v any) *Problem {
	if len(bytes.TrimSpace(data)) == 0 {
		return problem(http.StatusBadRequest, ProbInvalidBody, "the request body is empty; send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonProblem(err)
	}
	if dec.More() {
		return problem(http.StatusBadRequest, ProbInvalidBody, "unexpected data after the JSON value")
	}
	if _, err := dec.Token(); err != io.EOF {
		return problem(http.StatusBadRequest, ProbInvalidBody, "unexpected data after the JSON value")
	}
	return nil
}

func jsonProblem(err error) *Problem {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return problem(http.StatusBadRequest, ProbInvalidBody, fmt.Sprintf("malformed JSON at byte %d", se.Offset))
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "(body)"
		}
		p := problem(http.StatusBadRequest, ProbInvalidBody, fmt.Sprintf("%s: expected %s, got JSON %s", field, te.Type.String(), te.Value))
		p.Errors = []FieldProblem{{Field: field, Message: "expected " + te.Type.String()}}
		return p
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return problem(http.StatusBadRequest, ProbInvalidBody, "truncated JSON")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		p := problem(http.StatusBadRequest, ProbInvalidBody, fmt.Sprintf("unknown member %q", name))
		p.Errors = []FieldProblem{{Field: name, Message: "unknown member"}}
		return p
	}
	return problem(http.StatusBadRequest, ProbInvalidBody, "the body could not be decoded")
}

// writeJSON sends v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// respond finishes a handler: a missing record becomes a 404 naming what,
// another error is passed up, and success sends v (or no body when v is nil).
func respond(w http.ResponseWriter, err error, what string, status int, v any) error {
	if errors.Is(err, store.ErrNotFound) {
		return notFound(what)
	}
	if err != nil {
		return err
	}
	if v == nil {
		w.WriteHeader(status)
		return nil
	}
	writeJSON(w, status, v)
	return nil
}
