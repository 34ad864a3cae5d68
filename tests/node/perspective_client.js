// Drives the service with the unmodified npm package `perspective-api-client`: only the
// host of its requests is redirected (an axios request interceptor swaps Google's origin
// for ours), everything else is the client's own code. Prints one JSON document: each
// call's answer, or its error as the client reports it (status and body).
'use strict';
const axios = require('axios');
const Perspective = require('perspective-api-client');

const GOOGLE = 'https://commentanalyzer.googleapis.com';
const target = process.env.PERSPECTIVE_ORIGIN; // e.g. http://127.0.0.1:8080
const calls = JSON.parse(process.env.PERSPECTIVE_CALLS); // [{name, key, text, options}]

axios.interceptors.request.use((config) => {
  if (!config.url.startsWith(GOOGLE + '/')) {
    throw new Error(`unexpected request to ${config.url}`);
  }
  return {...config, url: target + config.url.slice(GOOGLE.length)};
});

async function run(call) {
  const client = new Perspective({apiKey: call.key});
  try {
    return {ok: true, data: await client.analyze(call.text, call.options)};
  } catch (error) {
    const response = error.response || {};
    return {
      ok: false,
      name: error.name,
      message: error.message,
      status: response.status,
      data: response.data,
    };
  }
}

(async () => {
  const results = {};
  for (const call of calls) {
    results[call.name] = await run(call); // one at a time: the order is the test's
  }
  process.stdout.write(JSON.stringify(results));
})().catch((error) => {
  process.stderr.write(String(error && error.stack || error));
  process.exit(1);
});
