package api

import (
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
)

var pathParamRE = regexp.MustCompile(`\{([A-Za-z]+)\}`)

// openAPI builds the OpenAPI 3.1 document from the route table; request and
// response schemas come from the Go types by reflection, so the document
// cannot drift from what the handlers decode and encode.
func (s *Server) openAPI() map[string]any {
	schemas := map[string]any{"Problem": schemaOf(reflect.TypeOf(Problem{}), nil)}
	paths := map[string]map[string]any{}
	for _, rt := range s.routes {
		op := map[string]any{
			"summary":     rt.summary,
			"tags":        []string{rt.tag},
			"operationId": operationID(rt),
		}
		var params []any
		for _, m := range pathParamRE.FindAllStringSubmatch(rt.pattern, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true,
				"schema": map[string]any{"type": "string", "pattern": "^[0-9a-f]{16}$"}})
		}
		for _, q := range rt.query {
			typ := "string"
			if q == "start" || q == "rows" {
				typ = "integer"
			}
			params = append(params, map[string]any{"name": q, "in": "query", "required": false, "schema": map[string]any{"type": typ}})
		}
		if params != nil {
			op["parameters"] = params
		}
		if rt.req != nil {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				"application/json": map[string]any{"schema": schemaRef(reflect.TypeOf(rt.req), schemas)}}}
		}
		status := rt.status
		if status == 0 {
			status = http.StatusOK
		}
		ok := map[string]any{"description": http.StatusText(status)}
		switch {
		case rt.resp != nil:
			ok["content"] = map[string]any{"application/json": map[string]any{"schema": schemaRef(reflect.TypeOf(rt.resp), schemas)}}
		case rt.pattern == "/metrics":
			ok["content"] = map[string]any{"text/plain": map[string]any{"schema": map[string]any{"type": "string"}}}
		case rt.raw != nil:
			ok["content"] = map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object"}}}
		}
		problemResp := map[string]any{"description": "Problem document (RFC 9457)", "content": map[string]any{
			"application/problem+json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Problem"}}}}
		op["responses"] = map[string]any{strconv.Itoa(status): ok, "default": problemResp}
		if rt.public {
			op["security"] = []any{}
		}
		if paths[rt.pattern] == nil {
			paths[rt.pattern] = map[string]any{}
		}
		paths[rt.pattern][strings.ToLower(rt.method)] = op
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{"title": "pbxd API", "version": s.cfg.Version,
			"description": "Users, service users, sessions and call control of the pbxd PBX appliance. Times are epoch milliseconds; errors are RFC 9457 problem documents."},
		"paths": paths,
		"components": map[string]any{
			"schemas": schemas,
			"securitySchemes": map[string]any{
				"bearer": map[string]any{"type": "http", "scheme": "bearer", "description": "A session token from login or a service-user token"},
				"basic":  map[string]any{"type": "http", "scheme": "basic", "description": "base64(serviceUserId:token)"},
			},
		},
		"security": []any{map[string]any{"bearer": []string{}}, map[string]any{"basic": []string{}}},
	}
}

func operationID(rt *route) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(rt.method))
	for _, seg := range strings.Split(rt.pattern, "/") {
		seg = strings.Trim(seg, "{}")
		if seg == "" || seg == "api" || seg == "v1" {
			continue
		}
		for _, part := range strings.FieldsFunc(seg, func(r rune) bool { return r == '-' || r == '.' }) {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}

// schemaRef registers a named struct schema and returns a $ref to it.
func schemaRef(t reflect.Type, schemas map[string]any) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t.Name() == "" {
		return schemaOf(t, schemas)
	}
	name := strings.ToUpper(t.Name()[:1]) + t.Name()[1:]
	if _, ok := schemas[name]; !ok {
		schemas[name] = map[string]any{} // placeholder against recursion
		schemas[name] = schemaOf(t, schemas)
	}
	return map[string]any{"$ref": "#/components/schemas/" + name}
}

// schemaOf is a small JSON Schema generator for the API's own types.
func schemaOf(t reflect.Type, schemas map[string]any) map[string]any {
	switch t.Kind() {
	case reflect.Pointer:
		return schemaOf(t.Elem(), schemas)
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint64, reflect.Uint32:
		return map[string]any{"type": "integer"}
	case reflect.Float64, reflect.Float32:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem(), schemas)}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem(), schemas)}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		if t.PkgPath() == "time" {
			return map[string]any{"type": "string", "format": "date-time"}
		}
		props := map[string]any{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if !f.IsExported() || tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			if name == "" {
				name = f.Name
			}
			if schemas != nil && f.Type.Kind() == reflect.Struct && f.Type.Name() != "" && f.Type.PkgPath() != "time" {
				props[name] = schemaRef(f.Type, schemas)
			} else {
				props[name] = schemaOf(f.Type, schemas)
			}
		}
		return map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	}
	return map[string]any{}
}

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	doc, err := json.MarshalIndent(s.openAPI(), "", "  ")
	if err != nil {
		writeProblem(w, r, errorProblem(err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(doc)
}
