// Renders /openapi.json with Swagger UI from /vendor (copied from npm by
// fetch-vendor.sh). validatorUrl null: no call to an online validator.
"use strict";
if (typeof window.SwaggerUIBundle !== "function") {
	document.getElementById("missing").hidden = false;
} else {
	window.ui = window.SwaggerUIBundle({
		url: "/openapi.json",
		dom_id: "#swagger-ui",
		deepLinking: true,
		validatorUrl: null,
		tryItOutEnabled: false,
		defaultModelsExpandDepth: 0,
		docExpansion: "list",
		presets: [window.SwaggerUIBundle.presets.apis],
		layout: "BaseLayout"
	});
}
