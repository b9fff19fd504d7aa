// The API page: errand's OpenAPI document rendered by Swagger UI, with "Try
// it out" sending this tab's token (the one the dashboard keeps in session
// storage) so calls work against a server that has --auth-token.
declare const SwaggerUIBundle: (options: Record<string, unknown>) => unknown;

SwaggerUIBundle({
  url: "/v1/openapi.json",
  dom_id: "#swagger",
  deepLinking: true,
  // Swagger UI would otherwise ask validator.swagger.io about the document
  // (an image from a third party, which the page's policy refuses anyway).
  validatorUrl: null,
  tryItOutEnabled: false,
  requestInterceptor: (req: { headers: Record<string, string> }) => {
    const token = sessionStorage.getItem("errand.token");
    if (token && !req.headers.Authorization) req.headers.Authorization = `Bearer ${token}`;
    return req;
  },
});
