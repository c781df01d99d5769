// reference.js: compute reference face descriptors with the original
// implementation (npm @vladmandic/face-api 1.7.15 on TensorFlow.js 4.22.0,
// cpu backend), to check lifeos's Go port (internal/facenet) against.
//
// Run by hand, not by CI (it needs npm packages):
//
//   npm install @tensorflow/tfjs@4.22.0 @tensorflow/tfjs-backend-wasm@4.22.0 \
//     @vladmandic/face-api@1.7.15 pngjs
//   node reference.js node_modules/@vladmandic/face-api/model crop1.png crop2.png > descriptors.json
//
// Each PNG must be a 150x150 face crop (lifeos face --aligned takes the
// same input). Prints [{"file", "descriptor": [128 numbers]}].
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');
const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');
const { PNG } = require('pngjs');

async function main() {
  const [modelDir, ...files] = process.argv.slice(2);
  if (!modelDir || files.length === 0) {
    console.error('usage: node reference.js MODEL_DIR CROP.png...');
    process.exit(2);
  }
  await tf.setBackend('cpu');
  await tf.ready();
  await faceapi.nets.faceRecognitionNet.loadFromDisk(modelDir);
  const out = [];
  for (const file of files) {
    const png = PNG.sync.read(fs.readFileSync(file));
    if (png.width !== 150 || png.height !== 150) {
      throw new Error(`${file}: ${png.width}x${png.height}, want a 150x150 crop`);
    }
    // RGBA -> RGB, as an int32 [150,150,3] tensor (what face-api feeds).
    const rgb = new Int32Array(150 * 150 * 3);
    for (let i = 0, j = 0; i < png.data.length; i += 4, j += 3) {
      rgb[j] = png.data[i];
      rgb[j + 1] = png.data[i + 1];
      rgb[j + 2] = png.data[i + 2];
    }
    const input = tf.tensor3d(rgb, [150, 150, 3], 'int32');
    const descriptor = await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(input);
    input.dispose();
    out.push({ file: path.basename(file), descriptor: Array.from(descriptor) });
  }
  process.stdout.write(JSON.stringify(out, null, 1) + '\n');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
