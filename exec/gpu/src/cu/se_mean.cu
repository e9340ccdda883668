int i = blockIdx.x * blockDim.x + threadIdx.x;
if (i >= {{nc}}) return;
const float* x = p1 + (long long)i * {{hw}};
float s = 0.0f;
for (int j = 0; j < {{hw}}; j++) s += x[j];
p0[i] = s / {{hw}}.0f;
