int i = blockIdx.x * blockDim.x + threadIdx.x;
if (i >= {{outer}}) return;
const float* x = p1 + (long long)i * {{inner}}; {{rdef}}
float* y = p0 + (long long)i * {{inner}};
float mean = 0.0f;
for (int j = 0; j < {{inner}}; j++) mean += {{load}};
mean /= {{inner}}.0f;
float var = 0.0f;
for (int j = 0; j < {{inner}}; j++) { float d = {{load}} - mean; var += d * d; }
var /= {{inner}}.0f;
float inv = rsqrtf(var + {{eps}});
for (int j = 0; j < {{inner}}; j++) { float v = ({{load}} - mean) * inv;{{affine}} y[j] = v; }
