// Errors as each API shapes them: OpenAI's `{"error": {"message", "type", "param", "code"}}` and
// Anthropic's `{"type": "error", "error": {"type", "message"}}`, with the HTTP status a client expects
// (400 bad request, 401 key, 404 model, 413 body, 503 busy with Retry-After).
import Chat
import Engine
import Foundation
import Hummingbird

/// Which API a route speaks (its error shape).
public enum APIFlavor: Sendable {
    case openAI, anthropic
}

/// An error answered to the client.
public struct APIError: Error, Sendable {
    public var status: HTTPResponse.Status
    public var message: String
    /// The request field at fault, when there is one.
    public var param: String?
    public var retryAfter: Int?

    public init(_ status: HTTPResponse.Status, _ message: String, param: String? = nil, retryAfter: Int? = nil) {
        self.status = status
        self.message = message
        self.param = param
        self.retryAfter = retryAfter
    }

    static func bad(_ message: String, param: String? = nil) -> APIError { APIError(.badRequest, message, param: param) }

    /// The engine's refusal as an API error.
    init(_ e: EngineError) {
        switch e {
        case .queueFull: self.init(.serviceUnavailable, e.description, retryAfter: 1)
        case .stopped, .setup: self.init(.serviceUnavailable, e.description)
        case .invalidParameter(let name, _): self.init(.badRequest, e.description, param: name)
        default: self.init(.badRequest, e.description)
        }
    }

    /// OpenAI's and Anthropic's error type names for the status.
    func typeName(_ flavor: APIFlavor) -> String {
        switch (status.code, flavor) {
        case (401, .openAI): "invalid_request_error"
        case (401, .anthropic): "authentication_error"
        case (404, .openAI): "invalid_request_error"
        case (404, .anthropic): "not_found_error"
        case (413, .openAI): "invalid_request_error"
        case (413, .anthropic): "request_too_large"
        case (503, .openAI): "server_error"
        case (503, .anthropic): "overloaded_error"
        case (500..., _): flavor == .openAI ? "server_error" : "api_error"
        default: "invalid_request_error"
        }
    }

    /// The response in the API's shape.
    func response(_ flavor: APIFlavor) -> Response {
        let body: JSONValue
        switch flavor {
        case .openAI:
            let code: JSONValue = status.code == 401 ? .string("invalid_api_key") : status.code == 404 ? .string("model_not_found") : .null
            body = .object([("error", .object([("message", .string(message)), ("type", .string(typeName(flavor))),
                                              ("param", param.map { .string($0) } ?? .null), ("code", code)]))])
        case .anthropic:
            body = .object([("type", .string("error")), ("error", .object([("type", .string(typeName(flavor))), ("message", .string(message))]))])
        }
        var headers: HTTPFields = [.contentType: "application/json"]
        if let r = retryAfter { headers[.retryAfter] = "\(r)" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body.pythonJSON())))
    }
}

/// A JSON response.
func json(_ v: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
    Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: v.pythonJSON())))
}
