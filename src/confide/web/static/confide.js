// Marks the page as able to run the NHS.UK components, then starts them. Every page works
// without this file: it only adds the components' enhancements.
import { initAll } from './nhsuk/nhsuk-frontend.min.js'

document.body.classList.add('js-enabled', 'nhsuk-frontend-supported')
initAll()
