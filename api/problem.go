package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"pbxd/store"
)

// Problem is an RFC 9457 problem document. Type is a stable URN that clients
// can switch on; Title is the same for every instance of a type.
type Problem struct {
	Type     string         `json:"type"`
	Title    string         `json:"title"`
	Status   int            `json:"status"`
	Detail   string         `json:"detail,omitempty"`
	Instance string         `json:"instance,omitempty"`
	Errors   []FieldProblem `json:"errors,omitempty"`
	// RetryAfter, when set, is also sent as the Retry-After header.
	RetryAfter time.Duration `json:"-"`
}

// FieldProblem names one invalid member of a request body or query.
type FieldProblem struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (p *Problem) Error() string { return p.Title + ": " + p.Detail }

// Problem types served by pbxd.
const (
	probPrefix             = "urn:pbxd:problem:"
	ProbBadRequest         = probPrefix + "bad-request"
	ProbInvalidBody        = probPrefix + "invalid-body"
	ProbValidation         = probPrefix + "validation"
	ProbBodyTooLarge       = probPrefix + "body-too-large"
	ProbUnsupportedMedia   = probPrefix + "unsupported-media-type"
	ProbUnauthorized       = probPrefix + "unauthorized"
	ProbForbidden          = probPrefix + "forbidden"
	ProbPasswordChange     = probPrefix + "password-change-required"
	ProbNotFound           = probPrefix + "not-found"
	ProbMethodNotAllowed   = probPrefix + "method-not-allowed"
	ProbConflict           = probPrefix + "conflict"
	ProbTooManyRequests    = probPrefix + "too-many-requests"
	ProbInternal           = probPrefix + "internal"
	ProbServiceUnavailable = probPrefix + "unavailable"
)

var probTitles = map[string]string{
	ProbBadRequest:         "Bad request",
	ProbInvalidBody:        "Request body is not valid JSON for this operation",
	ProbValidation:         "Request failed validation",
	ProbBodyTooLarge:       "Request body too large",
	ProbUnsupportedMedia:   "Unsupported media type",
	ProbUnauthorized:       "Authentication required",
	ProbForbidden:          "Not allowed",
	ProbPasswordChange:     "Password change required",
	ProbNotFound:           "Not found",
	ProbMethodNotAllowed:   "Method not allowed",
	ProbConflict:           "Conflict",
	ProbTooManyRequests:    "Too many requests",
	ProbInternal:           "Internal error",
	ProbServiceUnavailable: "Service unavailable",
}

func problem(status int, typ, detail string) *Problem {
	return &Problem{Type: typ, Title: probTitles[typ], Status: status, Detail: detail}
}

func badRequest(format string, args ...any) *Problem {
	return problem(http.StatusBadRequest, ProbBadRequest, fmt.Sprintf(format, args...))
}

func invalid(field, msg string) *Problem {
	p := problem(http.StatusBadRequest, ProbValidation, field+": "+msg)
	p.Errors = []FieldProblem{{Field: field, Message: msg}}
	return p
}

func notFound(what string) *Problem {
	return problem(http.StatusNotFound, ProbNotFound, what+" not found")
}

func forbidden(detail string) *Problem {
	return problem(http.StatusForbidden, ProbForbidden, detail)
}

func conflict(detail string) *Problem {
	return problem(http.StatusConflict, ProbConflict, detail)
}

func unauthorized() *Problem {
	return problem(http.StatusUnauthorized, ProbUnauthorized, "missing, invalid or expired credentials")
}

// writeProblem sends p; r may be nil.
func writeProblem(w http.ResponseWriter, r *http.Request, p *Problem) {
	if p.Instance == "" && r != nil {
		p.Instance = r.URL.Path
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	if p.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="pbxd", Basic realm="pbxd", charset="UTF-8"`)
	}
	if p.RetryAfter > 0 {
		secs := int((p.RetryAfter + time.Second - 1) / time.Second)
		h.Set("Retry-After", strconv.Itoa(secs))
	}
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// errorProblem maps an error from a handler to a problem document. Store
// sentinels become 404/409; anything unknown is a 500 whose detail reveals
// nothing (the error is logged by the caller).
func errorProblem(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	var ce *store.ConflictError
	switch {
	case errors.As(err, &ce):
		return conflict(fmt.Sprintf("%s %s %q is already taken", ce.Kind, ce.Field, ce.Value))
	case errors.Is(err, store.ErrNotFound):
		return notFound("resource")
	case errors.Is(err, store.ErrImmutable):
		return problem(http.StatusBadRequest, ProbValidation, "an immutable field cannot be changed")
	case errors.Is(err, store.ErrClosed):
		return problem(http.StatusServiceUnavailable, ProbServiceUnavailable, "shutting down")
	}
	return problem(http.StatusInternalServerError, ProbInternal, "the server could not complete the request")
}
