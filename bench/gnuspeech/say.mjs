// node say.mjs VOICE TEMPO OUT.wav < text  -- GnuSpeech (male, female, large_child, small_child, baby) to a WAV file.
import { readFileSync, writeFileSync } from 'fs'
import { synthesize } from '@echogarden/gnuspeech-wasm'

const [voice, tempo, out] = process.argv.slice(2)
const text = readFileSync(0, 'utf-8')
const { audioData } = await synthesize(text, { voice, tempo: Number(tempo) })
writeFileSync(out, audioData)
