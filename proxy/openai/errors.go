package openai

import "github.com/tollgate/tollgate/meter"

// AppendError appends OpenAI's error body,
// {"error":{"message":M,"type":T,"param":P,"code":null}}. typ is one of the
// contract's error type names (invalid_request_error, billing_error, …);
// param is null when empty.
func AppendError(dst []byte, typ, message, param string) []byte {
	return AppendErrorCode(dst, typ, message, param, "")
}

// AppendErrorCode is AppendError with a code (null when empty), for errors
// that OpenAI's API tells apart by code, such as "model_not_found".
func AppendErrorCode(dst []byte, typ, message, param, code string) []byte {
	dst = append(dst, `{"error":{"message":`...)
	dst = meter.AppendJSONString(dst, message)
	dst = append(dst, `,"type":`...)
	dst = meter.AppendJSONString(dst, typ)
	dst = append(dst, `,"param":`...)
	dst = appendNullable(dst, param, param != "")
	dst = append(dst, `,"code":`...)
	dst = appendNullable(dst, code, code != "")
	return append(dst, "}}"...)
}
